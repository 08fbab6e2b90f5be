//! A tiny HTTP/1.1 server for the CLI's unit tests: answers each connection with the next
//! canned response and reports the request line it read.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::{channel, Receiver};

/// Serves one canned response per connection, in order; returns the address and request lines.
pub(crate) fn serve(responses: Vec<String>) -> (String, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for resp in responses {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let _ = tx.send(first.trim().to_string());
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    (addr, rx)
}

/// A complete response with `Connection: close`.
pub(crate) fn http(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

/// Global flags pointing the CLI at `addr` in region `global`.
pub(crate) fn global(addr: &str) -> crate::cli::Global {
    crate::cli::Global {
        address: Some(addr.to_string()),
        region: Some("global".into()),
        namespace: None,
    }
}
