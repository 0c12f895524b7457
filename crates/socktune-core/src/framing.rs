//! How long an HTTP/1 message says it is, read from its first write: the head, then a body of
//! `Content-Length` bytes (none for a request without one, nor for a 1xx, 204 or 304 response),
//! and whether the connection closes after it. Cork sends the write that completes a message on
//! a connection that stays open at once: holding it until the program's next call would only
//! make the peer wait. A message whose length its head does not give (chunked, read until close,
//! a head split over writes) is not measured, and waits for its boundary.

/// Bytes of head read at most: a longer head is not measured.
const HEAD_MAX: usize = 8192;

/// What an HTTP/1 head declares.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Declared {
    /// The message's length, head included.
    pub len: u32,
    /// The connection closes after it: an HTTP/1.0 message without `Connection: keep-alive`,
    /// or one with `Connection: close`.
    pub closes: bool,
}

/// What the HTTP/1 message that `first` (the message's first write) begins declares; `None`
/// where the head does not give its length, or `first` is not an HTTP/1 message.
pub fn declared(first: &[u8]) -> Option<Declared> {
    let first = &first[..first.len().min(HEAD_MAX)];
    // The start line first: most writes that are not HTTP are told by their first bytes, before
    // any search for the head's end (a status line and a method both start with a capital).
    if !first.first().is_some_and(u8::is_ascii_uppercase) {
        return None;
    }
    // One pass over the head's lines, each ended by CRLF, up to the empty one.
    let mut rest = first;
    let mut next_line = || {
        let end = position_of(b'\n', rest)?;
        let line = rest[..end].strip_suffix(b"\r")?;
        rest = &rest[end + 1..];
        Some(line)
    };
    let start = next_line()?;
    let mut body = body_by_start_line(start)?;
    let mut closes = start.starts_with(b"HTTP/1.0") || start.ends_with(b"HTTP/1.0");
    loop {
        let line = next_line()?;
        if line.is_empty() {
            break;
        }
        // Only three names matter: their first letters and lengths pass over the other fields
        // without a search for the colon or a comparison.
        if !matches!(line[0] | 0x20, b'c' | b't') {
            continue;
        }
        let Some((name, value)) = split_field(line) else {
            continue;
        };
        match name.len() {
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => return None,
            10 if name.eq_ignore_ascii_case(b"connection") => {
                closes = has_token(value, b"close") || (closes && !has_token(value, b"keep-alive"));
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                if body == Body::None {
                    continue; // a 304's or 204's length is the resource's: it has no body
                }
                let n = parse_decimal(value)?;
                match body {
                    Body::Length(m) if m != n => return None, // two that differ: not ours to judge
                    _ => body = Body::Length(n),
                }
            }
            _ => {}
        }
    }
    let head_len = first.len() - rest.len();
    let body = match body {
        Body::Length(n) => n,
        Body::None | Body::EmptyUnlessStated => 0,
        Body::UntilClose => return None,
    };
    let len = u32::try_from(head_len as u64 + body).ok()?;
    Some(Declared { len, closes })
}

/// Whether `read`, the first bytes a read returned of an incoming message, begins an HTTP/1 head
/// that declares more than arrived: the peer is still sending, and its Nagle may be waiting for
/// the ACK of what came (quickack-off sends that ACK at once).
pub fn continues_past(read: &[u8]) -> bool {
    starts_like_a_head(read) && declared(read).is_some_and(|d| d.len as usize > read.len())
}

/// A status line's start, or a method (capitals, then a space) within its first bytes: a read of
/// bulk text is told apart before any search for the end of its first line.
fn starts_like_a_head(read: &[u8]) -> bool {
    begins_response(read) || begins_request(read)
}

/// Whether `bytes` begin an HTTP/1 response: a status line's start.
pub fn begins_response(bytes: &[u8]) -> bool {
    bytes.starts_with(b"HTTP/1.")
}

/// Whether `bytes` begin an HTTP/1 request: a method (capitals, then a space) in the first 16.
pub fn begins_request(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .take(16)
        .position(|&b| b == b' ')
        .is_some_and(|i| i > 0 && bytes[..i].iter().all(u8::is_ascii_uppercase))
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Body {
    /// No body whatever the fields say.
    None,
    /// A response with no length is read until the connection closes.
    UntilClose,
    /// A request has no body unless its fields give a length.
    EmptyUnlessStated,
    Length(u64),
}

/// What a start line implies before the fields: a request has no body unless it gives a length,
/// and a response's status says whether it may have one.
fn body_by_start_line(line: &[u8]) -> Option<Body> {
    if let Some(rest) = line.strip_prefix(b"HTTP/1.") {
        let status = rest.get(2..5)?;
        if rest.get(1) != Some(&b' ') || !status.iter().all(u8::is_ascii_digit) {
            return None;
        }
        return Some(match status {
            [b'1', ..] | b"204" | b"304" => Body::None,
            _ => Body::UntilClose,
        });
    }
    let version = line.get(line.len().checked_sub(9)?..)?;
    let method_ok = line
        .iter()
        .take_while(|&&b| b != b' ')
        .all(u8::is_ascii_uppercase);
    (method_ok && (version == b" HTTP/1.1" || version == b" HTTP/1.0"))
        .then_some(Body::EmptyUnlessStated)
}

fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = position_of(b':', line)?;
    Some((&line[..colon], line[colon + 1..].trim_ascii()))
}

/// Where `byte` first occurs in `hay`, eight bytes at a time: a head is read on every response
/// of a corked connection.
fn position_of(byte: u8, hay: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = u64::from_ne_bytes([byte; 8]);
    let mut chunks = hay.chunks_exact(8);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().ok()?) ^ pattern;
        // The lowest flagged byte is the first zero byte of `word`, which is where `byte` is.
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(i * 8 + zeros.trailing_zeros() as usize / 8);
        }
    }
    let tail = chunks.remainder();
    let done = hay.len() - tail.len();
    tail.iter().position(|&b| b == byte).map(|p| done + p)
}

fn parse_decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::{declared, Declared};

    fn declared_length(first: &[u8]) -> Option<u32> {
        declared(first).map(|d| d.len)
    }

    #[test]
    fn a_read_of_a_head_alone_continues() {
        let head = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n";
        assert!(super::continues_past(head));
        assert!(!super::continues_past(
            b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc"
        ));
        assert!(
            !super::continues_past(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n"),
            "no head end yet"
        );
        assert!(!super::continues_past(b"xyz"), "a body");
        assert!(!super::continues_past(b"Lorem ipsum\r\n\r\n"), "text");
        assert!(
            !super::continues_past(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n\r\n"),
            "no method"
        );
        assert!(
            !super::continues_past(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            "a whole request"
        );
        assert!(super::continues_past(
            b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc"
        ));
    }

    #[test]
    fn a_response_with_a_length_is_its_head_and_body() {
        let head = b"HTTP/1.0 200 OK\r\nServer: x\r\ncontent-LENGTH:  100 \r\n\r\n";
        assert_eq!(declared_length(head), Some(head.len() as u32 + 100));
        let mut whole = head.to_vec();
        whole.extend([b'x'; 100]);
        assert_eq!(declared_length(&whole), Some(whole.len() as u32));
    }

    #[test]
    fn lengths_the_head_does_not_give_are_not_guessed() {
        for head in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", // read until close
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", // the head goes on in the next write
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
            b"+OK\r\n\r\n",
            b"",
        ] {
            assert_eq!(
                declared_length(head),
                None,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn bodiless_statuses_and_requests_end_with_their_head() {
        for head in [
            &b"HTTP/1.1 304 Not Modified\r\nContent-Length: 999\r\n\r\n"[..],
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(declared_length(head), Some(head.len() as u32));
        }
        let post = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(declared_length(post), Some(post.len() as u32));
        assert_eq!(declared_length(b"get /x HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn a_byte_is_found_where_it_first_is() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'a'; len];
                hay[at] = b'\n';
                if at + 3 < len {
                    hay[at + 3] = b'\n';
                }
                assert_eq!(super::position_of(b'\n', &hay), Some(at), "{len} {at}");
            }
            assert_eq!(super::position_of(b'\n', &vec![0x8a; len]), None);
        }
    }

    #[test]
    fn a_message_says_whether_the_connection_closes_after_it() {
        let closes = |head: &[u8]| declared(head).map(|d: Declared| d.closes);
        assert_eq!(
            closes(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Some(true)
        );
        assert_eq!(
            closes(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"),
            Some(false)
        );
        assert_eq!(
            closes(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Some(false)
        );
        assert_eq!(
            closes(
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n"
            ),
            Some(true)
        );
        assert_eq!(closes(b"GET / HTTP/1.0\r\n\r\n"), Some(true));
    }
}
