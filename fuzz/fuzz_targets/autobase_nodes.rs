//! Autobase blocks as they come from writer cores: block 0 (the header)
//! and every later block (a node). The first byte picks which. Property:
//! decoded and valid, or a typed error; what decodes re-encodes to a block
//! that decodes to the same header or node, and a decoded node passes the
//! rules `Node::validate` states.
#![no_main]

use hyper_autobase::{Header, Node};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, block)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        if let Ok(header) = Header::decode(block) {
            assert_eq!(Header::decode(&header.encode()).ok(), Some(header));
        }
    } else if let Ok(node) = Node::decode(block) {
        assert!(node.validate().is_ok());
        assert_eq!(Node::decode(&node.encode()).ok().as_ref(), Some(&node));
        // The constructor's canonical form of valid heads is the same.
        let mut rebuilt = Node::new(node.value.clone(), node.heads.clone(), node.batch_remaining)
            .with_checkpoint(node.checkpoint.clone());
        if let Some(causal) = node.causal {
            assert!(causal.validate().is_ok());
            rebuilt = rebuilt.with_causal(causal);
        }
        assert_eq!(rebuilt, node);
    }
});
