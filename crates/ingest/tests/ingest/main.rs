//! invitrack-ingest end to end: the simulator speaks Discord, NATS JetStream is real, ingest
//! runs in-process (the bad-token test runs the binary).

mod buffer;
mod errors;
mod helpers;
mod missed_joins;
mod resume;
mod scale;
mod startup;
mod storm;
