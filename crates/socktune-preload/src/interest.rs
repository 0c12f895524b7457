//! What a wait call (poll, select, epoll) waits for on an fd, as the behaviours that act before
//! waits (`armed`, `quickack`) ask it. The hooks describe poll's and select's sets; epoll's set
//! is the kernel's, so [`EpollInterest`] answers from what epoll_ctl showed.

use libc::c_int;
use socktune_core::state::FdState;

/// How a wait call describes its interest in an fd: (read, write), or `None` if not waited on.
pub trait Interest {
    fn of(&self, fd: c_int, state: FdState) -> Option<(bool, bool)>;
    /// The wait may be for input on any connection (epoll: its set is the kernel's).
    fn any_input(&self) -> bool {
        false
    }
}

/// epoll: what epoll_ctl told us (see `armed::epoll_registered`); unknown means read and write. An
/// fd never registered with epoll is not waited on.
pub struct EpollInterest;

impl Interest for EpollInterest {
    fn of(&self, _fd: c_int, state: FdState) -> Option<(bool, bool)> {
        state
            .has(FdState::EPOLL_REGISTERED)
            .then_some((true, !state.has(FdState::EPOLL_READ_ONLY)))
    }
    fn any_input(&self) -> bool {
        true
    }
}
