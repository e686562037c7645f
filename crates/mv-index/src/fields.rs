//! The index schema and how a message becomes a document.

use mv_store::Item;
use mv_store::mime::MessageText;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{TantivyDocument, Term};

/// Bumped whenever the schema or tokenization changes: an index of another format
/// is rebuilt.
pub(crate) const FORMAT: u32 = 1;

/// Longest token indexed, in bytes. A document with a longer token is flagged
/// `verify` (always a candidate) instead, so no substring is ever missed.
pub(crate) const MAX_TOKEN: usize = 128;

/// The searchable text fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TextKey {
    Subject,
    From,
    To,
    Cc,
    Body,
    Attachments,
    Header,
}

#[derive(Debug, Clone)]
pub(crate) struct Fields {
    pub schema: Schema,
    pub id: Field,
    pub folder: Field,
    pub kind: Field,
    pub date: Field,
    pub size: Field,
    pub flags: Field,
    pub tags: Field,
    pub verify: Field,
    text: [(TextKey, Field); 7],
}

impl Fields {
    pub fn new() -> Fields {
        let mut b = Schema::builder();
        let id = b.add_u64_field("id", INDEXED | FAST | STORED);
        let folder = b.add_u64_field("folder", INDEXED | FAST);
        let kind = b.add_u64_field("kind", INDEXED | FAST);
        let date = b.add_i64_field("date", INDEXED | FAST);
        let size = b.add_u64_field("size", FAST);
        let flags = b.add_u64_field("flags", FAST);
        let tags = b.add_u64_field("tags", INDEXED);
        let verify = b.add_u64_field("verify", INDEXED);
        // Doc ids only: queries need neither frequencies nor positions.
        let opts = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::Basic),
        );
        let mut t = |name: &str| b.add_text_field(name, opts.clone());
        let text = [
            (TextKey::Subject, t("subject")),
            (TextKey::From, t("from")),
            (TextKey::To, t("to")),
            (TextKey::Cc, t("cc")),
            (TextKey::Body, t("body")),
            (TextKey::Attachments, t("attachments")),
            (TextKey::Header, t("header")),
        ];
        Fields {
            schema: b.build(),
            id,
            folder,
            kind,
            date,
            size,
            flags,
            tags,
            verify,
            text,
        }
    }

    pub fn text(&self, key: TextKey) -> Field {
        self.text
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| *f)
            .expect("every TextKey has a field")
    }

    pub fn id_term(&self, id: u32) -> Term {
        Term::from_field_u64(self.id, u64::from(id))
    }

    /// The document of a message. `text` is `None` when its blob could not be read:
    /// the document is then flagged for verification.
    pub fn document(&self, item: &Item, text: Option<&MessageText>) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.id, u64::from(item.id));
        doc.add_u64(self.folder, u64::from(item.folder_id));
        doc.add_u64(self.kind, item.kind.code() as u64);
        doc.add_i64(self.date, mv_store::search::effective_date(item));
        doc.add_u64(self.size, item.size);
        doc.add_u64(self.flags, u64::from(item.flags));
        for t in &item.tags {
            doc.add_u64(self.tags, u64::from(*t));
        }
        let mut verify = text.is_none();
        let empty = MessageText::default();
        let text = text.unwrap_or(&empty);
        let parts: [(TextKey, &str); 7] = [
            (TextKey::Subject, &item.subject.to_lowercase()),
            (TextKey::From, &item.sender.to_lowercase()),
            (TextKey::To, &item.recipients.to_lowercase()),
            (TextKey::Cc, &item.cc.to_lowercase()),
            (TextKey::Body, &text.body),
            (TextKey::Attachments, &text.attachments),
            (TextKey::Header, &text.header),
        ];
        for (key, lower) in parts {
            let (pre, too_long) = pre_tokenized(lower);
            verify |= too_long;
            doc.add_pre_tokenized_text(self.text(key), pre);
        }
        doc.add_u64(self.verify, u64::from(verify));
        doc
    }
}

/// Tokens of lowercased text: maximal runs of alphanumeric characters. The one
/// tokenization both indexing and querying use.
pub(crate) fn tokens(lower: &str) -> impl Iterator<Item = &str> {
    lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
}

/// The distinct tokens of `lower` (the index needs each term once per document),
/// and whether a token was too long to index.
fn pre_tokenized(lower: &str) -> (PreTokenizedString, bool) {
    let mut seen = std::collections::HashSet::new();
    let mut too_long = false;
    let mut out = Vec::new();
    for t in tokens(lower) {
        if t.len() > MAX_TOKEN {
            too_long = true;
            continue;
        }
        if seen.insert(t) {
            out.push(Token {
                offset_from: 0,
                offset_to: 0,
                position: out.len(),
                text: t.to_string(),
                position_length: 1,
            });
        }
    }
    (
        PreTokenizedString {
            text: String::new(),
            tokens: out,
        },
        too_long,
    )
}
