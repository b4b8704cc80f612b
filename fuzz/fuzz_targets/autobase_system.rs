//! Autobase system entries as they come from a base's system core (a
//! peer's, signed or not yet). Property: decoded and valid or a typed
//! error; what decodes passes `SystemEntry::validate`, its frontier passes
//! `Frontier::validate`, and it re-encodes to a block that decodes to the
//! same entry.
#![no_main]

use hyper_autobase::SystemEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = SystemEntry::decode(data) {
        assert!(entry.validate().is_ok());
        assert!(entry.frontier.validate().is_ok());
        assert_eq!(
            SystemEntry::decode(&entry.encode()).ok().as_ref(),
            Some(&entry)
        );
    }
});
