//! What the server adds around the reverse proxy: the writer of its dead letters into the
//! records database, and the certificate of its TLS listener kept current.

pub mod dead_letters;
pub mod tls;
