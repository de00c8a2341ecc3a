//! Maps a [`crate::denial::Denial`] to the local reply Envoy sends.
