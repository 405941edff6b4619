//! Capacity search.
