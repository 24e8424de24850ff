//! The delivery pipeline's workers under faults: email delivery, crashes, retries and the chaos suite.

mod chaos;
mod delivery;
mod faults;
mod interrupted_sends;
mod worker_policy;
