//! Administration surfaces served by the proxy itself.
//!
//! - [`stats`]: the `stats uri` page (HTML, and CSV with `;csv`) with
//!   HAProxy's column order, read-only.

pub mod stats;
