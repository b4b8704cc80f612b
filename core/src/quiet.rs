//! Catching a panic without printing it.
//!
//! redb can panic on a damaged file (an assertion on a page it could not
//! make sense of). Such a panic is caught and turned into a corruption
//! error, but the default panic hook would still print the panic message
//! and a backtrace to stderr before the clean error. [`catch`] marks the
//! current thread quiet while it runs `f`; a hook installed once (wrapping
//! whatever hook was set before, which still runs for every other panic)
//! prints nothing for a quiet thread. A program that sets its own hook
//! after the first store was opened replaces the wrapper; panics inside
//! [`catch`] are then printed by that hook (still caught).

use std::cell::Cell;
use std::panic::{self, UnwindSafe};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Runs `f`; a panic inside it is returned as `Err` and never printed.
pub(crate) fn catch<T>(f: impl FnOnce() -> T + UnwindSafe) -> std::thread::Result<T> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = panic::catch_unwind(f);
    QUIET.with(|q| q.set(was));
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_caught_panic_is_an_error() {
        assert!(super::catch(|| panic!("quiet")).is_err());
        assert_eq!(super::catch(|| 7).ok(), Some(7));
    }
}
