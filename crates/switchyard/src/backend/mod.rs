//! Backends at run time: server state, balancing algorithms, stickiness.

pub mod balance;
pub mod server;
pub mod sticky;

pub use server::ServerState;
