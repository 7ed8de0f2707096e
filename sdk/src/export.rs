//! The registration macro, [`filter!`](crate::filter!), and what its expansion calls.

/// Registers a [`Plugin`](crate::Plugin) as the filter of this crate: emits `_initialize` (installs the logger and
/// panic hook), the ABI marker `proxy_abi_version_0_2_1`, `proxy_on_memory_allocate`, and every `proxy_on_*`
/// callback, each forwarding to the SDK's dispatcher by context id.
///
/// `filter!(MyPlugin)` builds the plugin with `Default`; `filter!(MyPlugin, make)` with `fn make() -> MyPlugin`.
/// The exports exist only when compiling for `wasm32`; natively the crate is tested with
/// [`FakeHost`](crate::testing::FakeHost). Use it once per crate, whose `crate-type` includes `cdylib`.
///
/// ```
/// use weir_sdk::prelude::*;
///
/// #[derive(Default)]
/// struct Hello;
///
/// impl Plugin for Hello {
///     type Config = ();
///     type Filter = Hello;
///     fn create_filter(&mut self, _stream: ContextId) -> Hello {
///         Hello
///     }
/// }
///
/// impl HttpFilter for Hello {}
///
/// weir_sdk::filter!(Hello);
/// ```
#[macro_export]
macro_rules! filter {
    ($plugin:ty) => {
        $crate::filter!($plugin, <$plugin as ::core::default::Default>::default);
    };
    ($plugin:ty, $new:expr) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::{Dispatcher, RefCell};

            ::std::thread_local! {
                static DISPATCHER: RefCell<Dispatcher<$plugin>> = RefCell::new(Dispatcher::new($new));
            }

            fn with<T>(run: impl FnOnce(&mut Dispatcher<$plugin>) -> T) -> T {
                DISPATCHER.with(|dispatcher| run(&mut dispatcher.borrow_mut()))
            }

            #[no_mangle]
            pub extern "C" fn _initialize() {
                $crate::__private::initialize();
            }

            #[no_mangle]
            pub extern "C" fn proxy_abi_version_0_2_1() {}

            #[no_mangle]
            pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
                $crate::__private::allocate(size)
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_context_create(context: u32, parent: u32) {
                with(|d| d.on_context_create(context, parent))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_vm_start(root: u32, size: usize) -> u32 {
                with(|d| d.on_vm_start(root, size)) as u32
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_configure(root: u32, size: usize) -> u32 {
                with(|d| d.on_configure(root, size)) as u32
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_tick(root: u32) {
                with(|d| d.on_tick(root))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_queue_ready(root: u32, queue: u32) {
                with(|d| d.on_queue_ready(root, queue))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_request_headers(context: u32, headers: usize, end: u32) -> u32 {
                with(|d| d.on_request_headers(context, headers, end != 0)).as_u32()
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_request_body(context: u32, size: usize, end: u32) -> u32 {
                with(|d| d.on_request_body(context, size, end != 0)).as_u32()
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_request_trailers(context: u32, trailers: usize) -> u32 {
                with(|d| d.on_request_trailers(context, trailers)).as_u32()
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_response_headers(context: u32, headers: usize, end: u32) -> u32 {
                with(|d| d.on_response_headers(context, headers, end != 0)).as_u32()
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_response_body(context: u32, size: usize, end: u32) -> u32 {
                with(|d| d.on_response_body(context, size, end != 0)).as_u32()
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_response_trailers(context: u32, trailers: usize) -> u32 {
                with(|d| d.on_response_trailers(context, trailers)).as_u32()
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_http_call_response(
                root: u32,
                token: u32,
                headers: usize,
                body: usize,
                trailers: usize,
            ) {
                with(|d| d.on_http_call_response(root, token, headers, body, trailers))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_log(context: u32) {
                with(|d| d.on_log(context))
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_done(context: u32) -> u32 {
                with(|d| d.on_done(context)) as u32
            }

            #[no_mangle]
            pub extern "C" fn proxy_on_delete(context: u32) {
                with(|d| d.on_delete(context))
            }
        };
    };
}

/// What [`filter!`](crate::filter!) expands to calls; not an API.
#[doc(hidden)]
pub mod __private {
    pub use crate::dispatch::Dispatcher;
    pub use std::cell::RefCell;

    /// `_initialize`: static constructors, then the logger and the panic hook.
    pub fn initialize() {
        #[cfg(target_arch = "wasm32")]
        crate::host::ffi::call_ctors();
        crate::logger::install();
        crate::logger::install_panic_hook();
    }

    /// `proxy_on_memory_allocate`.
    #[cfg(target_arch = "wasm32")]
    pub fn allocate(size: usize) -> *mut u8 {
        crate::host::ffi::allocate(size)
    }
}
