//! Untrusted lengths (record length fields, CBOR heads declaring huge arrays, byte
//! strings or maps) must never drive allocation: the decoders allocate at most a
//! small multiple of the input. Measured with a counting global allocator, which is
//! why this is a test binary of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use mv_redo::format::{FileHeader, MAX_BODY_LEN};
use mv_types::{Lsn, UtcMillis};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
}

fn note(size: usize) {
    if TRACKING.with(Cell::get) {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Largest single allocation while decoding `input` every way the fuzz target does.
fn largest_allocation(input: &[u8]) -> usize {
    LARGEST.store(0, Ordering::Relaxed);
    TRACKING.with(|t| t.set(true));
    mv_redo::fuzzing::redo_record(input);
    TRACKING.with(|t| t.set(false));
    LARGEST.load(Ordering::Relaxed)
}

/// A record frame (valid CRC) around an arbitrary payload for an op type.
fn frame(op_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&op_type.to_le_bytes());
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&1u64.to_le_bytes()); // lsn
    body.extend_from_slice(&[0; 8 + 8 + 4 + 8]);
    body.extend_from_slice(payload);
    let mut rec = Vec::new();
    rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
    rec.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    rec.extend_from_slice(&body);
    rec
}

#[test]
fn declared_lengths_do_not_drive_allocation() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    // Record length fields up to the maximum and beyond, with little behind them.
    for len in [
        40u32,
        4096,
        MAX_BODY_LEN as u32,
        MAX_BODY_LEN as u32 + 1,
        u32::MAX,
    ] {
        let mut r = len.to_le_bytes().to_vec();
        r.extend_from_slice(&[0; 60]);
        inputs.push(r);
    }
    // CBOR heads declaring 2^64-1 elements / bytes, in every position an op can have
    // a collection, for every op type.
    let huge_heads: [&[u8]; 6] = [
        &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // array
        &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // bytes
        &[0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // text
        &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // map
        &[0x9a, 0xff, 0xff, 0xff, 0xff],                         // array, 2^32-1
        &[0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f, 0x9f],       // nested indefinite
    ];
    for op_type in 1..=18u16 {
        for head in huge_heads {
            for prefix in [
                &[][..],
                &[0x82][..],
                &[0x83, 0x00][..],
                &[0x82, 0x00][..],
                &[0xa1, 0x00][..],
            ] {
                let payload = [prefix, head].concat();
                inputs.push(frame(op_type, &payload));
            }
        }
    }
    // A deep nest of indefinite arrays inside an ignored map value (skip() path).
    let mut deep = vec![0xa2, 0x00, 0x00, 0x19];
    deep.extend(std::iter::repeat_n(0x9f, 4000));
    inputs.push(frame(3, &deep));

    for input in &inputs {
        let largest = largest_allocation(input);
        // Copies of the input (and a header in front), plus decoded vectors whose
        // elements each took at least one input byte: a small multiple of the input.
        let bound = 64 * input.len() + 16 * 1024;
        assert!(
            largest <= bound,
            "{} input bytes made a {largest}-byte allocation: {:02x?}",
            input.len(),
            &input[..input.len().min(24)]
        );
    }

    // The file reader too: a length field claiming 256 MiB in a small file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redo.log");
    let mut file = FileHeader::new(1, UtcMillis(0), Lsn(1)).encode().to_vec();
    file.extend_from_slice(&(MAX_BODY_LEN as u32).to_le_bytes());
    file.extend_from_slice(&[0; 100]);
    std::fs::write(&path, &file).unwrap();
    LARGEST.store(0, Ordering::Relaxed);
    TRACKING.with(|t| t.set(true));
    let items: Vec<_> = mv_redo::RedoFileReader::open(&path).unwrap().collect();
    TRACKING.with(|t| t.set(false));
    assert!(matches!(items.as_slice(), [Err(_)]), "{items:?}");
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < 64 * 1024,
        "reader allocated {largest} bytes for a 176-byte file"
    );
}
