module example.invalid/weir/examples/lang/go

go 1.24
