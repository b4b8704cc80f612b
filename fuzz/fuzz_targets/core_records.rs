//! Every on-disk record decoder of hyper-core: the core header, the
//! manifest, equivocation evidence, node pages, chunk headers and bitfield
//! pages. Each input goes to all of them. Property: a decoder returns a
//! value or a typed error (never panics), and what decodes re-encodes to
//! bytes that decode to the same value.
#![no_main]

use hyper_core::Manifest;
use hyper_core::bitfield::{Bitfield, PAGE_BYTES};
use hyper_core::fuzzing::{
    PAGE_NODES, PART_MAX, chunk_layout, chunk_parts, chunk_spans, decode_evidence, encode_chunk,
    encode_evidence, encode_node_page, node_page_get, node_page_nodes, reencode_header,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    header(data);
    manifest(data);
    evidence(data);
    node_page(data);
    chunk_header(data);
    bitfield_page(data);
});

fn header(data: &[u8]) {
    if let Ok(canonical) = reencode_header(data) {
        assert_eq!(
            reencode_header(&canonical).ok().as_ref(),
            Some(&canonical),
            "a decoded header's encoding does not decode to itself"
        );
    }
}

fn manifest(data: &[u8]) {
    if let Ok(m) = Manifest::decode(data) {
        assert_eq!(Manifest::decode(&m.encode()).ok(), Some(m));
    }
}

fn evidence(data: &[u8]) {
    if let Ok(e) = decode_evidence(data) {
        assert_eq!(decode_evidence(&encode_evidence(&e)).ok(), Some(e));
    }
}

fn node_page(data: &[u8]) {
    let page_number = 3;
    let Ok(nodes) = node_page_nodes(page_number, data) else {
        return;
    };
    let base = page_number * PAGE_NODES;
    for slot in 0..PAGE_NODES {
        let got = node_page_get(data, base + slot).expect("a page that decodes reads per node");
        assert_eq!(got.as_ref(), nodes.iter().find(|n| n.index == base + slot));
    }
    // The page layout is canonical: the nodes encode to the same bytes.
    if !nodes.is_empty() {
        assert_eq!(encode_node_page(&nodes).as_deref(), Some(data));
    }
}

fn chunk_header(data: &[u8]) {
    let Some(layout) = chunk_layout(data) else {
        return;
    };
    assert!(layout.header_len <= data.len());
    assert_eq!(
        layout.ranges.len(),
        layout.lengths.len(),
        "a block without a range"
    );
    assert!(!layout.range_past_end, "a range for a block past the last");
    let mut end = layout.header_len;
    for (j, range) in layout.ranges.iter().enumerate() {
        assert_eq!(range.start, end, "block {j} does not follow the one before");
        assert_eq!(range.len(), layout.lengths[j] as usize);
        end = range.end;
        // The parts the block's bytes fall in cover it exactly.
        let covered: usize = chunk_spans(range.clone()).map(|(_, r)| r.len()).sum();
        assert_eq!(covered, range.len());
        assert!(
            chunk_spans(range.clone()).all(|(part, r)| part < layout.parts && r.end <= PART_MAX)
        );
    }
    assert_eq!(end, layout.stream_len);
    // Small chunks round-trip through the encoder.
    if layout.stream_len <= 1 << 16 {
        let blocks: Vec<Vec<u8>> = layout
            .lengths
            .iter()
            .map(|&l| vec![7u8; l as usize])
            .collect();
        let stream = encode_chunk(&blocks);
        let parts: Vec<&[u8]> = chunk_parts(&stream).collect();
        assert_eq!(parts.len(), layout.parts as usize);
        assert_eq!(chunk_layout(parts[0]), Some(layout));
    }
}

fn bitfield_page(data: &[u8]) {
    let mut bitfield = Bitfield::new();
    let loaded = bitfield.load_page(2, data);
    assert_eq!(loaded.is_some(), data.len() == PAGE_BYTES);
    if loaded.is_some() {
        let base = 2 * (PAGE_BYTES as u64) * 8;
        for (i, byte) in data.iter().enumerate().step_by(97) {
            for bit in 0..8 {
                let index = base + (i as u64) * 8 + bit;
                assert_eq!(bitfield.get(index), byte & (1 << bit) != 0, "bit {index}");
            }
        }
    }
}
