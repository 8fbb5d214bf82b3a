//! A minimal HTTP server for health-check tests: answers every request on `ADDR` with
//! `200 OK` and the body `OK`, a thread per connection, until killed. Prints "listening on" to
//! stderr once bound. With `ALLOWED` (a file), only the source addresses it lists (one per
//! line, read at every request) get 200; others get 503.

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let addr = std::env::args()
        .nth(1)
        .expect("usage: http-target ADDR:PORT [ALLOWED]");
    let allowed = std::env::args().nth(2);
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    eprintln!("listening on {addr}");
    for stream in listener.incoming().flatten() {
        let allowed = allowed.clone();
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let source = stream.peer_addr().map(|a| a.ip().to_string());
            let ok = match (&allowed, source) {
                (None, _) => true,
                (Some(file), Ok(source)) => std::fs::read_to_string(file)
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l.trim() == source),
                (Some(_), Err(_)) => false,
            };
            let response: &[u8] = if ok {
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK"
            } else {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            };
            let _ = stream.write_all(response);
        });
    }
}
