//! Raft RPCs between servers (filled in below).
