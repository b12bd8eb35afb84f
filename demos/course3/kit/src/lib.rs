//! The parts every Course 3 Sovereign demo shares, kept in one home: the seeded,
//! fraud-like transaction set the demos train and check on ([`data`]) and the small
//! HTTP/1.1 client they talk to loopback servers with ([`http`]: realizar's
//! `/invocations`, MLflow's REST API).

pub mod data;
pub mod http;
