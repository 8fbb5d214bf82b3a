//! Frame Streams (<https://farsightsec.github.io/fstrm/>), the transport dnstap is written in:
//! a file (unidirectional: START, data frames, STOP) or a unix socket (bidirectional: READY
//! and ACCEPT before START, FINISH after STOP), content type `protobuf:dnstap.Dnstap`.
//!
//! Written here rather than with the `framestream` crate: that crate writes only the
//! unidirectional form, and writes START lazily with the first frame, so a log with no
//! queries is not a valid file.

use std::io::{self, Read, Write};

/// dnstap's content type.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

const ACCEPT: u32 = 0x01;
const START: u32 = 0x02;
const STOP: u32 = 0x03;
const READY: u32 = 0x04;
const FINISH: u32 = 0x05;
const FIELD_CONTENT_TYPE: u32 = 0x01;
/// Longest control frame read from a reader (ACCEPT with a few content types).
const MAX_CONTROL: u32 = 512;

/// A control frame: escape (0), length, type, and the content type field when `typed`.
fn control(kind: u32, typed: bool) -> Vec<u8> {
    let mut body = kind.to_be_bytes().to_vec();
    if typed {
        body.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        body.extend_from_slice(&(CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend_from_slice(CONTENT_TYPE);
    }
    let mut frame = 0u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Reads one control frame and checks its type (and, for ACCEPT, that it accepts dnstap).
fn expect_control(reader: &mut impl Read, kind: u32) -> io::Result<()> {
    let mut word = [0u8; 4];
    reader.read_exact(&mut word)?;
    if u32::from_be_bytes(word) != 0 {
        return Err(io::Error::other("expected a control frame"));
    }
    reader.read_exact(&mut word)?;
    let len = u32::from_be_bytes(word);
    if !(4..=MAX_CONTROL).contains(&len) {
        return Err(io::Error::other(format!("control frame of {len} bytes")));
    }
    let mut body = vec![0u8; len as usize];
    reader.read_exact(&mut body)?;
    let got = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    if got != kind {
        return Err(io::Error::other(format!(
            "control frame type {got}, expected {kind}"
        )));
    }
    if kind == ACCEPT {
        let mut fields = &body[4..];
        let mut accepted = fields.is_empty(); // no field: any content type
        while fields.len() >= 8 {
            let field = u32::from_be_bytes([fields[0], fields[1], fields[2], fields[3]]);
            let flen = u32::from_be_bytes([fields[4], fields[5], fields[6], fields[7]]) as usize;
            let value = fields
                .get(8..8 + flen)
                .ok_or_else(|| io::Error::other("truncated ACCEPT field"))?;
            accepted |= field == FIELD_CONTENT_TYPE && value == CONTENT_TYPE;
            fields = &fields[8 + flen..];
        }
        if !accepted {
            return Err(io::Error::other("the reader does not accept dnstap"));
        }
    }
    Ok(())
}

/// An open Frame Streams writer.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    /// Starts a unidirectional stream (a file): START.
    pub fn unidirectional(mut out: W) -> io::Result<Self> {
        out.write_all(&control(START, true))?;
        out.flush()?;
        Ok(Self { out })
    }

    /// Starts a bidirectional stream (a socket): READY, the reader's ACCEPT, START.
    pub fn bidirectional<R: Read>(mut out: W, reader: &mut R) -> io::Result<Self> {
        out.write_all(&control(READY, true))?;
        out.flush()?;
        expect_control(reader, ACCEPT)?;
        out.write_all(&control(START, true))?;
        out.flush()?;
        Ok(Self { out })
    }

    /// Writes one data frame.
    pub fn frame(&mut self, payload: &[u8]) -> io::Result<()> {
        self.out.write_all(&(payload.len() as u32).to_be_bytes())?;
        self.out.write_all(payload)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Ends the stream: STOP (and, on a socket, the reader's FINISH).
    pub fn stop<R: Read>(mut self, reader: Option<&mut R>) -> io::Result<()> {
        self.out.write_all(&control(STOP, false))?;
        self.out.flush()?;
        if let Some(r) = reader {
            expect_control(r, FINISH)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_stream_is_start_frames_stop() {
        let mut out = Vec::new();
        let mut w = Writer::unidirectional(&mut out).unwrap();
        w.frame(b"abc").unwrap();
        w.stop::<&[u8]>(None).unwrap();
        let mut want = vec![0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 22];
        want.extend_from_slice(CONTENT_TYPE);
        want.extend_from_slice(&[0, 0, 0, 3, b'a', b'b', b'c']);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
        assert_eq!(out, want);
    }

    #[test]
    fn a_socket_stream_needs_an_accept_of_dnstap() {
        let accept = control(ACCEPT, true);
        let mut out = Vec::new();
        Writer::bidirectional(&mut out, &mut accept.as_slice()).unwrap();
        assert!(out.starts_with(&control(READY, true)));
        let mut other = 0u32.to_be_bytes().to_vec();
        other.extend_from_slice(&(4 + 8 + 3u32).to_be_bytes());
        other.extend_from_slice(&ACCEPT.to_be_bytes());
        other.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        other.extend_from_slice(&3u32.to_be_bytes());
        other.extend_from_slice(b"xyz");
        let err = Writer::bidirectional(Vec::new(), &mut other.as_slice())
            .err()
            .unwrap();
        assert!(err.to_string().contains("does not accept dnstap"), "{err}");
        let huge = [0, 0, 0, 0, 0, 1, 0, 0];
        assert!(Writer::bidirectional(Vec::new(), &mut huge.as_slice()).is_err());
    }
}
