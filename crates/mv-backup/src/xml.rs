//! The XML files of a target (`session.xml`, `meta.xml`, `accounts.xml`,
//! `sys/config.xml`): a small writer and a strict reader into an element tree.
//!
//! Data lives in attributes (`<account email="u@d" status="completed"/>`); element
//! text is not used. Every file ends with a checksum trailer,
//! `<!-- blake3:HEX -->` followed by a newline, where HEX is the BLAKE3 of every
//! byte before the trailer. A truncated, zero-byte or altered file fails to load
//! with the original's recognisable "Unable to parse XML file ..." text; it is never
//! half-read.

use crate::error::{BackupError, Result};
use quick_xml::events::Event;
use std::fmt::Write as _;

const TRAILER_OPEN: &str = "<!-- blake3:";
const TRAILER_CLOSE: &str = " -->\n";

/// Builds an indented XML document.
pub struct XmlWriter {
    out: String,
    stack: Vec<String>,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    pub fn new() -> XmlWriter {
        XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            stack: Vec::new(),
        }
    }

    fn tag(&mut self, name: &str, attrs: &[(&str, String)], close: bool) {
        for _ in 0..self.stack.len() {
            self.out.push_str("  ");
        }
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            let _ = write!(self.out, " {k}=\"{}\"", escape_attr(v));
        }
        self.out.push_str(if close { "/>\n" } else { ">\n" });
    }

    /// `<name a="b">` (closed by [`XmlWriter::close`]).
    pub fn open(&mut self, name: &str, attrs: &[(&str, String)]) {
        self.tag(name, attrs, false);
        self.stack.push(name.to_string());
    }

    /// `<name a="b"/>`
    pub fn leaf(&mut self, name: &str, attrs: &[(&str, String)]) {
        self.tag(name, attrs, true);
    }

    /// Closes the innermost open element.
    pub fn close(&mut self) {
        if let Some(name) = self.stack.pop() {
            for _ in 0..self.stack.len() {
                self.out.push_str("  ");
            }
            let _ = writeln!(self.out, "</{name}>");
        }
    }

    /// The document with every element closed and the checksum trailer.
    pub fn finish(mut self) -> Vec<u8> {
        while !self.stack.is_empty() {
            self.close();
        }
        let digest = blake3::hash(self.out.as_bytes());
        let _ = write!(self.out, "{TRAILER_OPEN}{}{TRAILER_CLOSE}", digest.to_hex());
        self.out.into_bytes()
    }
}

/// Escapes an attribute value; control characters become character references so
/// that they survive attribute-value normalization.
fn escape_attr(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\n' => s.push_str("&#10;"),
            '\r' => s.push_str("&#13;"),
            '\t' => s.push_str("&#9;"),
            c if (c as u32) < 0x20 => s.push('?'),
            c => s.push(c),
        }
    }
    s
}

/// An element: its name, attributes in document order, and child elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Reads documents of one file, naming it in every error.
pub struct XmlFile<'a> {
    pub path: &'a str,
}

impl XmlFile<'_> {
    fn err(&self, reason: impl Into<String>) -> BackupError {
        BackupError::Xml {
            path: self.path.to_string(),
            reason: reason.into(),
        }
    }

    /// Checks the trailer and parses the document into its root element.
    pub fn parse(&self, bytes: &[u8]) -> Result<Element> {
        if bytes.is_empty() {
            return Err(self.err("the file is empty (0 bytes)"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| self.err("not UTF-8"))?;
        let Some(at) = text.rfind(TRAILER_OPEN) else {
            return Err(self.err("no checksum trailer: the file is truncated or not ours"));
        };
        let rest = &text[at + TRAILER_OPEN.len()..];
        let Some(hex) = rest.strip_suffix(TRAILER_CLOSE) else {
            return Err(self.err("malformed checksum trailer (truncated file?)"));
        };
        let body = &text[..at];
        if blake3::hash(body.as_bytes()).to_hex().as_str() != hex {
            return Err(self.err("checksum mismatch: the file was altered or damaged"));
        }
        self.parse_unchecked(body)
    }

    /// Parses a document without a trailer (strictly: one root, balanced tags).
    pub fn parse_unchecked(&self, text: &str) -> Result<Element> {
        let mut reader = quick_xml::Reader::from_str(text);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let ev = reader
                .read_event()
                .map_err(|e| self.err(format!("at byte {}: {e}", reader.error_position())))?;
            match ev {
                Event::Start(e) | Event::Empty(e) if root.is_some() => {
                    let _ = e;
                    return Err(self.err("content after the root element"));
                }
                Event::Start(e) => {
                    stack.push(self.element(&e)?);
                }
                Event::Empty(e) => {
                    let el = self.element(&e)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::End(_) => {
                    let el = stack.pop().ok_or_else(|| self.err("unbalanced end tag"))?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::Text(t) => {
                    if !String::from_utf8_lossy(&t).trim().is_empty() {
                        return Err(self.err("unexpected text"));
                    }
                }
                Event::GeneralRef(_) | Event::CData(_) => {
                    return Err(self.err("unexpected text"));
                }
                Event::Eof => break,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        if !stack.is_empty() {
            return Err(self.err(format!(
                "unexpected end of file inside <{}>",
                stack.last().map(|e| e.name.as_str()).unwrap_or("")
            )));
        }
        root.ok_or_else(|| self.err("no root element"))
    }

    fn element(&self, e: &quick_xml::events::BytesStart<'_>) -> Result<Element> {
        let name = self.utf8(e.name().as_ref(), "an element name")?;
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|e| self.err(format!("bad attribute in <{name}>: {e}")))?;
            let key = self.utf8(a.key.as_ref(), &format!("an attribute name in <{name}>"))?;
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| self.err(format!("bad value of {key} in <{name}>: {e}")))?
                .into_owned();
            attrs.push((key, value));
        }
        Ok(Element {
            name,
            attrs,
            children: Vec::new(),
        })
    }

    /// A name read from the document (UTF-8, as the whole document was checked to be).
    fn utf8(&self, bytes: &[u8], what: &str) -> Result<String> {
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| self.err(format!("{what} is not UTF-8")))
    }

    /// A required attribute.
    pub fn req<'e>(&self, el: &'e Element, name: &str) -> Result<&'e str> {
        el.attr(name)
            .ok_or_else(|| self.err(format!("<{}> lacks the attribute {name}", el.name)))
    }

    /// A required numeric attribute.
    pub fn num<T: std::str::FromStr>(&self, el: &Element, name: &str) -> Result<T> {
        let v = self.req(el, name)?;
        v.parse().map_err(|_| {
            self.err(format!(
                "attribute {name} of <{}> is not a number: {v:?}",
                el.name
            ))
        })
    }

    /// An optional numeric attribute.
    pub fn opt_num<T: std::str::FromStr>(&self, el: &Element, name: &str) -> Result<Option<T>> {
        match el.attr(name) {
            None | Some("") => Ok(None),
            Some(_) => self.num(el, name).map(Some),
        }
    }

    /// A required child element.
    pub fn req_child<'e>(&self, el: &'e Element, name: &str) -> Result<&'e Element> {
        el.child(name)
            .ok_or_else(|| self.err(format!("<{}> lacks the element <{name}>", el.name)))
    }

    /// Fails unless the root element has the expected name.
    pub fn expect_root(&self, el: &Element, name: &str) -> Result<()> {
        if el.name != name {
            return Err(self.err(format!("root element is <{}>, expected <{name}>", el.name)));
        }
        Ok(())
    }

    pub fn invalid(&self, reason: impl Into<String>) -> BackupError {
        self.err(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Vec<u8> {
        let mut w = XmlWriter::new();
        w.open("session", &[("label", "full-1".into())]);
        w.leaf(
            "error",
            &[("message", "a <b> & \"c\"\nline two\ttab".into())],
        );
        w.finish()
    }

    #[test]
    fn round_trip_with_escapes() {
        let bytes = doc();
        let f = XmlFile { path: "s.xml" };
        let root = f.parse(&bytes).unwrap();
        assert_eq!(root.name, "session");
        assert_eq!(root.attr("label"), Some("full-1"));
        assert_eq!(
            root.child("error").unwrap().attr("message"),
            Some("a <b> & \"c\"\nline two\ttab")
        );
    }

    #[test]
    fn truncation_and_damage_are_refused_with_the_original_text() {
        let bytes = doc();
        let f = XmlFile {
            path: "x/session.xml",
        };
        for cut in [0, 1, 10, bytes.len() / 2, bytes.len() - 1] {
            let e = f.parse(&bytes[..cut]).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("Unable to parse XML file x/session.xml"),
                "{e}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[50] ^= 1;
        assert!(f.parse(&flipped).is_err());
        // Structurally broken documents, even with a valid trailer.
        for body in ["<a><b></a>", "<a>", "<a/><b/>", "text", "<a>x</a>"] {
            let mut s = body.to_string();
            s.push_str(&format!(
                "{TRAILER_OPEN}{}{TRAILER_CLOSE}",
                blake3::hash(body.as_bytes()).to_hex()
            ));
            assert!(f.parse(s.as_bytes()).is_err(), "{body}");
        }
    }
}
