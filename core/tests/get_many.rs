//! `Core::get_many`: many blocks in one read, each exactly as `Core::get`
//! gives it, across chunks and parts, with cleared blocks as `None`.

mod common;

use hyper_core::Error;

#[test]
fn get_many_gives_what_get_gives_for_each_index_in_any_order() {
    // 700 blocks of 1 to 900 bytes: several 256-block chunks, each cut
    // into several parts, so reads cross chunk and part bounds.
    let data: Vec<Vec<u8>> = (0..700u32)
        .map(|i| vec![(i % 251) as u8; 1 + (i as usize * 37) % 900])
        .collect();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let (_w, core) = common::writer(&refs);
    core.clear(300..310).expect("clear");
    let indices = [5, 699, 5, 305, 0, 257, 255, 256, 309, 310, 511, 512, 1];
    let many = core.get_many(&indices).expect("get_many");
    assert_eq!(many.len(), indices.len());
    for (&i, got) in indices.iter().zip(&many) {
        match core.get(i) {
            Ok(one) => {
                assert_eq!(got.as_ref(), Some(&one), "block {i}");
                assert_eq!(one, data[i as usize], "block {i}");
            }
            Err(Error::NotAvailable { .. }) => assert_eq!(got, &None, "cleared block {i}"),
            Err(e) => panic!("get({i}): {e}"),
        }
    }
    assert!(many[3].is_none() && many[8].is_none() && many[9].is_some());
    assert!(core.get_many(&[]).expect("none asked").is_empty());
    assert!(matches!(
        core.get_many(&[1, 700]),
        Err(Error::OutOfBounds {
            index: 700,
            length: 700
        })
    ));
}
