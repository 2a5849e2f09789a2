//! Capability tokens: how one handle is named in a request made on another.
//!
//! A request cannot carry an fd (a Redox scheme call carries bytes), so
//! where a Linux ioctl takes an fd, the client first asks that fd's handle
//! for its token with the [`CALL`] call and puts the token in the request.
//! Tokens are unguessable: a process can only name a handle it was given.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// The call (metadata word 0) every daemon that hands out fds answers on
/// such a handle: the payload is the token (`u64`, out). One number for
/// every scheme, so a client library need not know which daemon serves an
/// fd to turn it into a token.
pub const CALL: u64 = 0x110;

/// What a client library puts in a request for an fd that is open but is
/// no handle with a token (a pipe, a regular file): no token is 0, so the
/// daemon finds nothing and answers as Linux does for a file of the wrong
/// kind.
pub const NOT_A_HANDLE: u64 = 0;

/// What a client library puts in a request for an fd that is not open
/// (-1, closed): where Linux tells that apart (PRIME import: EBADF, not
/// EINVAL), the daemon can too. No token is `u64::MAX` either.
pub const NOT_OPEN: u64 = u64::MAX;

/// A two-way map between keys and their tokens.
#[derive(Debug)]
pub struct Tokens<K> {
    by_token: HashMap<u64, K>,
    by_key: HashMap<K, u64>,
    keys: RandomState,
    counter: u64,
}

impl<K> Default for Tokens<K> {
    fn default() -> Self {
        Tokens {
            by_token: HashMap::new(),
            by_key: HashMap::new(),
            keys: RandomState::new(),
            counter: 0,
        }
    }
}

impl<K: Copy + Eq + Hash> Tokens<K> {
    /// `key`'s token, made on first use. Never [`NOT_A_HANDLE`] or
    /// [`NOT_OPEN`].
    pub fn token(&mut self, key: K) -> u64 {
        if let Some(&t) = self.by_key.get(&key) {
            return t;
        }
        // A keyed hash of a counter: distinct per process run and not
        // derivable from tokens seen before.
        let token = loop {
            self.counter += 1;
            let t = self.keys.hash_one(self.counter);
            if t != NOT_A_HANDLE && t != NOT_OPEN && !self.by_token.contains_key(&t) {
                break t;
            }
        };
        self.by_token.insert(token, key);
        self.by_key.insert(key, token);
        token
    }

    /// The key `token` names.
    pub fn get(&self, token: u64) -> Option<K> {
        self.by_token.get(&token).copied()
    }

    /// Forgets `key`'s token (its handle closed): the token names nothing.
    pub fn remove(&mut self, key: K) {
        if let Some(t) = self.by_key.remove(&key) {
            self.by_token.remove(&t);
        }
    }

    /// `key`'s token, if it was given one.
    pub fn of(&self, key: K) -> Option<u64> {
        self.by_key.get(&key).copied()
    }

    /// Gives `key` the `token` an earlier instance of this daemon gave it
    /// (clients may hold it); false, and nothing changes, if either is
    /// taken or the token is one no handle has.
    pub fn restore(&mut self, key: K, token: u64) -> bool {
        if token == NOT_A_HANDLE
            || token == NOT_OPEN
            || self.by_token.contains_key(&token)
            || self.by_key.contains_key(&key)
        {
            return false;
        }
        self.by_token.insert(token, key);
        self.by_key.insert(key, token);
        true
    }

    /// How many tokens are live.
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Whether no token is live.
    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_token_until_removed() {
        let mut t = Tokens::default();
        let a = t.token(1u32);
        let b = t.token(2u32);
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(t.token(1), a);
        assert_eq!(t.get(a), Some(1));
        t.remove(1);
        assert_eq!(t.get(a), None);
        assert_eq!(t.len(), 1);
        assert_ne!(t.token(1), a, "a removed token is not handed out again");
    }

    #[test]
    fn tokens_differ_between_tables() {
        let mut x = Tokens::default();
        let mut y = Tokens::default();
        assert_ne!(x.token(7u8), y.token(7u8));
    }
}
