//! The servers rcimd may connect to, and which one each attempt dials.
//!
//! An operator can give several `--server` entries, like the address list RC's
//! navigation server hands its SDK: equivalent nodes of one service. [`ServerList`]
//! owns that list and the rules a usable one follows (at least one entry, each an
//! `rcim://` or `rcims://` address, no entry twice, one scheme for all), so the
//! link never sees a list it cannot use.
//!
//! Which node an attempt dials is the pure function [`pick`]: each round of
//! attempts starts at the node that last worked (the first one until one has), and
//! every failed attempt moves on to the next one, round robin. The link's attempt
//! counter is the only state: it restarts on a success, on a network change or a
//! resume (RC restarts its schedule there), and on a fresh connect, so those all
//! start again from the node that last worked. There is one dial per step of RC's
//! schedule, whichever node it goes to, so a list never makes more traffic than a
//! single server would. See docs/DECISIONS.md (2026-12-03, failover).

use super::connector::{AddrError, ServerAddr};
use std::fmt;

/// A usable, non-empty list of servers, in the order they were given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerList {
    nodes: Vec<ServerAddr>,
}

impl ServerList {
    /// A list of one server.
    pub fn one(server: ServerAddr) -> Self {
        Self {
            nodes: vec![server],
        }
    }

    /// Checks a list of servers: not empty, no entry twice (host names compared
    /// without case), all `rcim://` or all `rcims://`.
    pub fn new(nodes: Vec<ServerAddr>) -> Result<Self, ListError> {
        let Some(first) = nodes.first() else {
            return Err(ListError::Empty);
        };
        for (i, node) in nodes.iter().enumerate() {
            if node.tls != first.tls {
                return Err(ListError::MixedSchemes {
                    first: first.to_string(),
                    other: node.to_string(),
                });
            }
            let twice = nodes[..i]
                .iter()
                .any(|seen| seen.port == node.port && seen.host.eq_ignore_ascii_case(&node.host));
            if twice {
                return Err(ListError::Duplicate(node.to_string()));
            }
        }
        Ok(Self { nodes })
    }

    /// Parses and checks every entry (`rcim://HOST:PORT` or `rcims://HOST:PORT`);
    /// surrounding blanks are ignored, an empty entry is an error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, ListError> {
        let mut nodes = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                return Err(ListError::Blank(i + 1));
            }
            nodes.push(ServerAddr::parse(entry).map_err(ListError::Address)?);
        }
        Self::new(nodes)
    }

    /// The first server: the one tried first, and the one the stored token is
    /// filed under.
    pub fn first(&self) -> &ServerAddr {
        &self.nodes[0]
    }

    /// The server at `index` (wrapping around the list).
    pub fn get(&self, index: usize) -> &ServerAddr {
        &self.nodes[index % self.nodes.len()]
    }

    /// How many servers there are (at least one).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a list holds at least one server.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The servers in order.
    pub fn iter(&self) -> impl Iterator<Item = &ServerAddr> {
        self.nodes.iter()
    }

    /// Whether the servers use TLS (`rcims://`); all of them do, or none.
    pub fn tls(&self) -> bool {
        self.first().tls
    }
}

impl From<ServerAddr> for ServerList {
    fn from(server: ServerAddr) -> Self {
        Self::one(server)
    }
}

impl fmt::Display for ServerList {
    /// The servers separated by commas, as `RCIM_SERVER` takes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, node) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{node}")?;
        }
        Ok(())
    }
}

/// Why a list of servers was refused. Each message names the entry at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// No server at all.
    #[error("the list of servers is empty; give at least one rcim://HOST:PORT")]
    Empty,
    /// Entry number `.0` (from 1) is blank (`RCIM_SERVER="a,,b"`, or `""` in the file).
    #[error("entry {0} of the list of servers is empty")]
    Blank(usize),
    /// An entry is not a server address.
    #[error(transparent)]
    Address(AddrError),
    /// The same server is listed twice.
    #[error("{0} is listed twice; give each server once")]
    Duplicate(String),
    /// Some entries use TLS and some do not.
    #[error(
        "{first} and {other}: every server in the list must use the same scheme (all rcim:// or all rcims://), so that failing over never drops TLS"
    )]
    MixedSchemes {
        /// The first entry.
        first: String,
        /// The first entry with the other scheme.
        other: String,
    },
}

/// The index of the node that attempt number `attempt` of a round dials (1 = the
/// round's first attempt), in a list of `len` nodes, when the round starts at
/// node `start`: the start node first, then each next node in turn, wrapping
/// around.
pub fn pick(start: usize, attempt: u32, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let step = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX) % len;
    (start % len + step) % len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Result<ServerList, String> {
        ServerList::parse(entries).map_err(|e| e.to_string())
    }

    #[test]
    fn each_round_starts_at_the_node_that_last_worked_and_moves_on_per_attempt() {
        // (start, attempt, len) -> node
        let table = [
            (0, 0, 1, 0),
            (0, 1, 1, 0),
            (0, 7, 1, 0),
            (0, 1, 3, 0),
            (0, 2, 3, 1),
            (0, 3, 3, 2),
            (0, 4, 3, 0),
            (0, 5, 3, 1),
            (2, 1, 3, 2),
            (2, 2, 3, 0),
            (2, 3, 3, 1),
            (1, 0, 2, 1),
            (1, 1, 2, 1),
            (1, 2, 2, 0),
            (5, 1, 3, 2),
            (0, u32::MAX, 3, (u32::MAX as usize - 1) % 3),
            (0, 1, 0, 0),
        ];
        for (start, attempt, len, node) in table {
            assert_eq!(
                pick(start, attempt, len),
                node,
                "start {start}, attempt {attempt}, {len} nodes"
            );
        }
    }

    #[test]
    fn a_list_keeps_its_order() {
        let servers = ServerList::parse(&["rcim://a:1", " rcim://b:2 ", "rcim://[::1]:3"]).unwrap();
        assert_eq!(servers.len(), 3);
        assert_eq!(servers.first().host, "a");
        assert_eq!(servers.get(1).host, "b");
        assert_eq!(servers.get(3).host, "a", "wraps around");
        assert!(!servers.tls());
        assert_eq!(servers.to_string(), "rcim://a:1,rcim://b:2,rcim://[::1]:3");
        let tls = ServerList::parse(&["rcims://a:1", "rcims://b:1"]).unwrap();
        assert!(tls.tls());
    }

    #[test]
    fn bad_lists_are_refused_naming_the_entry() {
        assert_eq!(
            list(&[]).unwrap_err(),
            "the list of servers is empty; give at least one rcim://HOST:PORT"
        );
        assert_eq!(
            list(&["rcim://a:1", " ", "rcim://b:2"]).unwrap_err(),
            "entry 2 of the list of servers is empty"
        );
        assert_eq!(
            list(&["rcim://a:1", "http://b:2"]).unwrap_err(),
            "http://b:2: the server must look like rcim://HOST:PORT or rcims://HOST:PORT (TLS)"
        );
        assert_eq!(
            list(&["rcim://a:1", "rcim://b:x"]).unwrap_err(),
            "rcim://b:x: the port must be a number from 1 to 65535"
        );
        assert_eq!(
            list(&["rcim://a:1", "rcim://b:2", "rcim://A:1/"]).unwrap_err(),
            "rcim://A:1 is listed twice; give each server once"
        );
        assert_eq!(
            list(&["rcims://a:1", "rcim://b:2"]).unwrap_err(),
            "rcims://a:1 and rcim://b:2: every server in the list must use the same scheme (all rcim:// or all rcims://), so that failing over never drops TLS"
        );
        // The same host on another port is another server.
        assert_eq!(list(&["rcim://a:1", "rcim://a:2"]).unwrap().len(), 2);
    }
}
