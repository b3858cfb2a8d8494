//! Delivery: from a decided alert to the world, durably. The policy stage ([`stage`])
//! turns each decision into outbox entries; the outbox ([`route::outbox`]) is written
//! before anything is sent and retried with back-off; one module per destination
//! (Slack, Teams, webhook, Jira, Linear, PagerDuty, the email digest) formats and sends;
//! response actions ([`respond`]) wait for a reviewer's approval and run through the same
//! outbox.

mod config;
pub mod respond;
pub mod route;
pub mod stage;

pub use config::DEFAULT_CONFIG;
pub use route::DeliveryConfig;
pub use stage::*;
