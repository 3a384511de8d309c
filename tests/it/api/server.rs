//! A scripted HTTP/1.1 server on 127.0.0.1:0: it records every raw request and answers from a
//! queue of canned replies, in arrival order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// One canned reply.
#[derive(Debug, Clone)]
pub(super) enum Reply {
    /// Raw bytes to write (a whole response).
    Raw(Vec<u8>),
    /// Read the request, then close the connection without answering.
    Close,
    /// Answer as soon as the head is read (before the body), then close.
    Early(Vec<u8>),
    /// Read the request, then never answer (the connection stays open).
    Hang,
    /// Write these bytes (a response cut short), then close the connection.
    Cut(Vec<u8>),
    /// Write the reply one byte at a time, pausing this long before each byte.
    Trickle(Vec<u8>, std::time::Duration),
    /// Read and count the body without keeping it (`Recorded::body` holds its length as
    /// decimal text), then answer.
    Discard(Vec<u8>),
}

/// A request as received.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    /// Request line and headers.
    pub(super) head: String,
    /// Body bytes (de-chunked).
    pub(super) body: Vec<u8>,
    /// When the head was complete.
    pub(super) at: Instant,
}

impl Recorded {
    /// A header value (case-insensitive name).
    pub(super) fn header(&self, name: &str) -> Option<String> {
        header_value(&self.head, name)
    }
}

/// The running server.
pub(super) struct Server {
    pub(super) base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Server {
    /// Starts the server with a script of replies.
    pub(super) async fn start(replies: Vec<Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(replies)));
        let (r, s) = (Arc::clone(&requests), Arc::clone(&script));
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, Arc::clone(&r), Arc::clone(&s)));
            }
        });
        Server {
            base_url: format!("http://{addr}"),
            requests,
            script,
        }
    }

    /// Requests received so far.
    pub(super) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (polling) until `n` requests have arrived.
    pub(super) async fn wait_for_requests(&self, n: usize) {
        while self.requests.lock().unwrap().len() < n {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Replies not used yet.
    pub(super) fn unused(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

async fn serve(
    mut sock: TcpStream,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
) {
    let mut buf = Vec::new();
    loop {
        let front = script.lock().unwrap().front().cloned();
        if let Some(Reply::Early(bytes)) = front {
            let Some(head) = read_head(&mut sock, &mut buf).await else {
                return;
            };
            script.lock().unwrap().pop_front();
            requests.lock().unwrap().push(head);
            let _ = sock.write_all(&bytes).await;
            // Drain what the client still sends, so that closing does not reset the answer.
            while fill(&mut sock, &mut buf).await.is_some() {
                buf.clear();
            }
            return;
        }
        if let Some(Reply::Discard(bytes)) = front {
            let Some(mut head) = read_head(&mut sock, &mut buf).await else {
                return;
            };
            script.lock().unwrap().pop_front();
            let len: u64 = head.header("content-length").unwrap().parse().unwrap();
            let mut seen = buf.len() as u64;
            buf.clear();
            while seen < len {
                fill(&mut sock, &mut buf).await.unwrap();
                seen += buf.len() as u64;
                buf.clear();
            }
            head.body = seen.to_string().into_bytes();
            requests.lock().unwrap().push(head);
            let _ = sock.write_all(&bytes).await;
            continue;
        }
        let Some(req) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        requests.lock().unwrap().push(req);
        let reply = script.lock().unwrap().pop_front();
        match reply {
            Some(Reply::Raw(bytes)) => {
                if sock.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Some(Reply::Hang) => std::future::pending::<()>().await,
            Some(Reply::Cut(bytes)) => {
                let _ = sock.write_all(&bytes).await;
                return;
            }
            Some(Reply::Trickle(bytes, pause)) => {
                for b in bytes {
                    tokio::time::sleep(pause).await;
                    if sock.write_all(&[b]).await.is_err() {
                        return;
                    }
                }
            }
            Some(Reply::Close | Reply::Early(_) | Reply::Discard(_)) | None => return,
        }
    }
}

/// Reads a request head only.
async fn read_head(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(sock, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end);
    Some(Recorded {
        head,
        body: Vec::new(),
        at: Instant::now(),
    })
}

/// Reads one request (Content-Length or chunked body) from `sock`, keeping leftovers in `buf`.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let Recorded { head, at, .. } = read_head(sock, buf).await?;
    let body = if let Some(len) = header_value(&head, "content-length") {
        let len: usize = len.parse().unwrap();
        while buf.len() < len {
            fill(sock, buf).await?;
        }
        buf.drain(..len).collect()
    } else if header_value(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        read_chunked(sock, buf).await?
    } else {
        Vec::new()
    };
    Some(Recorded { head, body, at })
}

async fn read_chunked(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            fill(sock, buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf.drain(..line_end + 2);
        while buf.len() < size + 2 {
            fill(sock, buf).await?;
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
        if size == 0 {
            return Some(body);
        }
    }
}

async fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 64 * 1024];
    let n = sock.read(&mut chunk).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// A JSON reply with a Content-Length.
pub(super) fn json(status: u16, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut out = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Reply::Raw(out.into_bytes())
}

/// A chunked reply without Content-Length (like the real server's downloads).
pub(super) fn chunked(status: u16, headers: &[(&str, &str)], chunks: &[&[u8]]) -> Reply {
    let mut out = format!("HTTP/1.1 {status} X\r\ntransfer-encoding: chunked\r\n").into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    for c in chunks {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    Reply::Raw(out)
}

/// The same reply, sent as soon as the request head is read (before the body), then closing.
pub(super) fn early(reply: Reply) -> Reply {
    match reply {
        Reply::Raw(bytes) | Reply::Early(bytes) => Reply::Early(bytes),
        other => other,
    }
}

/// The same reply, after reading and discarding the request body.
pub(super) fn discarding(reply: Reply) -> Reply {
    match reply {
        Reply::Raw(bytes) | Reply::Discard(bytes) => Reply::Discard(bytes),
        other => other,
    }
}
