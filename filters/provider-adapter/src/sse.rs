//! An incremental server-sent-events parser: body chunks in (any byte boundaries), whole events out. Only
//! the incomplete trailing event is held, and never more than a bound.

/// One event: its `event:` name (empty when none) and its `data:` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field.
    pub name: String,
    /// The `data:` field(s).
    pub data: String,
}

/// The held event grew past the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge(pub usize);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a stream event is larger than {} bytes (max_event_bytes)", self.0)
    }
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended with `\r` (a following `\n` belongs to it).
    after_cr: bool,
    /// The event being built.
    current: Event,
    has_data: bool,
    /// Bytes held for the current event.
    held: usize,
    max: usize,
}

impl Parser {
    /// A parser that holds at most `max` bytes of one event.
    pub fn new(max: usize) -> Parser {
        Parser { max, ..Parser::default() }
    }

    /// Feeds a chunk; calls `on_event` for each event it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(Event)) -> Result<(), TooLarge> {
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                if b == b'\n' && self.after_cr && i == start && self.line.is_empty() {
                    // The `\n` of a `\r\n` split after `\r` or right after it.
                    self.after_cr = false;
                    start = i + 1;
                    continue;
                }
                self.line.extend_from_slice(&chunk[start..i]);
                self.after_cr = b == b'\r';
                start = i + 1;
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, &mut on_event);
            } else {
                self.after_cr = false;
            }
        }
        self.line.extend_from_slice(&chunk[start..]);
        if self.held + self.line.len() > self.max {
            return Err(TooLarge(self.max));
        }
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], on_event: &mut impl FnMut(Event)) {
        if line.is_empty() {
            if self.has_data {
                on_event(std::mem::take(&mut self.current));
            }
            self.current = Event::default();
            self.has_data = false;
            self.held = 0;
            return;
        }
        self.held += line.len();
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.current.name = value.to_string(),
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    /// The stream ended: a last event without its blank line still counts.
    pub fn finish(&mut self, mut on_event: impl FnMut(Event)) {
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.line_done(&line, &mut on_event);
        }
        if self.has_data {
            on_event(std::mem::take(&mut self.current));
            self.has_data = false;
        }
    }
}

/// Splits newline-delimited JSON (Ollama's native stream) across chunks, holding at most `max` bytes.
#[derive(Debug, Default)]
pub struct Lines {
    line: Vec<u8>,
    max: usize,
}

impl Lines {
    /// A splitter holding at most `max` bytes of one line.
    pub fn new(max: usize) -> Lines {
        Lines { line: Vec::new(), max }
    }

    /// Feeds a chunk; calls `on_line` for each non-empty line it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_line: impl FnMut(&[u8])) -> Result<(), TooLarge> {
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if b == b'\n' {
                self.line.extend_from_slice(&chunk[start..i]);
                start = i + 1;
                let line = std::mem::take(&mut self.line);
                let trimmed = line.trim_ascii();
                if !trimmed.is_empty() {
                    on_line(trimmed);
                }
            }
        }
        self.line.extend_from_slice(&chunk[start..]);
        if self.line.len() > self.max {
            return Err(TooLarge(self.max));
        }
        Ok(())
    }

    /// The stream ended: a last line without its newline still counts.
    pub fn finish(&mut self, mut on_line: impl FnMut(&[u8])) {
        let line = std::mem::take(&mut self.line);
        let trimmed = line.trim_ascii();
        if !trimmed.is_empty() {
            on_line(trimmed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[u8], split: usize) -> Vec<Event> {
        let mut parser = Parser::new(1 << 20);
        let mut out = Vec::new();
        parser.feed(&input[..split], |e| out.push(e)).unwrap();
        parser.feed(&input[split..], |e| out.push(e)).unwrap();
        parser.finish(|e| out.push(e));
        out
    }

    #[test]
    fn events_come_out_whole_at_every_split_and_line_ending() {
        let expected = vec![
            Event { name: "a".into(), data: "{\"x\":1}".into() },
            Event { name: String::new(), data: "one\ntwo".into() },
        ];
        for input in [
            &b"event: a\ndata: {\"x\":1}\n\n: comment\ndata: one\ndata: two\n\n"[..],
            b"event: a\r\ndata: {\"x\":1}\r\n\r\n: comment\r\ndata: one\r\ndata:two\r\n\r\n",
            b"event: a\rdata: {\"x\":1}\r\r: comment\rdata: one\rdata: two\r\r",
        ] {
            for split in 0..=input.len() {
                assert_eq!(events(input, split), expected, "{:?} split at {split}", String::from_utf8_lossy(input));
            }
        }
    }

    #[test]
    fn an_event_larger_than_the_bound_is_refused() {
        let mut parser = Parser::new(16);
        assert!(parser.feed(b"data: 0123456789", |_| {}).is_ok());
        assert_eq!(parser.feed(b"abcdefgh", |_| {}), Err(TooLarge(16)));
        let mut parser = Parser::new(16);
        // Whole events never count against the bound, however many come in one chunk.
        let mut n = 0;
        parser.feed(&b"data: 0123456789\n\n".repeat(10), |_| n += 1).unwrap();
        assert_eq!(n, 10);
    }

    #[test]
    fn lines_split_across_chunks() {
        let input = b"{\"a\":1}\n\n{\"b\":2}\n{\"c\":3}";
        for split in 0..=input.len() {
            let mut lines = Lines::new(64);
            let mut out: Vec<String> = Vec::new();
            lines.feed(&input[..split], |l| out.push(String::from_utf8_lossy(l).into())).unwrap();
            lines.feed(&input[split..], |l| out.push(String::from_utf8_lossy(l).into())).unwrap();
            lines.finish(|l| out.push(String::from_utf8_lossy(l).into()));
            assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"], "split at {split}");
        }
    }
}
