//! switchyard: a load balancer that runs HAProxy configuration files.
//!
//! Layout (one module per concern):
//! - [`frontend`]: routing decisions (ACLs, `use_backend`), pure and synchronous.
//! - [`backend`]: server runtime state, balancing algorithms, cookie stickiness.

pub mod backend;
pub mod frontend;
