//! The committer time of the last commit touching each of many paths — what
//! `git --literal-pathspecs log -1 --format=%ct <commit> -- <path>` prints for each — from one
//! `git log` pass instead of one process per path.
//!
//! What git does for one path (default history simplification): starting at `<commit>`, a commit
//! that differs from all of its parents at the path is shown (the answer, since `-1`); a root
//! commit is shown (the path exists there, or the walk would have stopped earlier); a commit that
//! is the same as a parent at the path is not shown, and the walk goes on to the *first* such
//! parent only. The walk of one path is therefore a single chain of commits.
//!
//! Here every path starts in one group at `<commit>`, and `git log --raw --diff-merges=first-parent`
//! streams each commit with its parents and the paths it changed against its first parent. At a
//! commit, the group's paths the commit changed leave the group: at a non-merge they are answered;
//! at a merge the other parents are asked in turn (`git diff-tree --stdin`, one long-lived
//! process, only for merges that such a path reaches) and each path follows the first parent it is
//! the same in, or is answered when there is none. The rest of the group moves on to the first
//! parent. Groups that meet at a commit are merged (union-find), so the cost is one pass over the
//! history's changes, not paths × commits. The pass stops as soon as every path is answered.
//!
//! `git log` lists a parent before a child only when commit dates are skewed; every commit read is
//! kept (its parents and the tracked paths it changed), so a group reaching an already-read commit
//! is processed at once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::command::{Git, GitError};

/// Marks a commit header in the `git log` stream (a raw diff entry starts with `:`).
const HEADER: u8 = 0x01;

/// Answers for `paths` (same order): the committer time (Unix seconds) of the last commit at or
/// before `commit` that touched each path, `None` where git would print nothing.
pub async fn last_commit_times(
    git: &Git,
    commit: &str,
    paths: &[String],
    timeout: Duration,
) -> Result<Vec<Option<i64>>, GitError> {
    match tokio::time::timeout(timeout, walk(git, commit, paths)).await {
        Ok(r) => r,
        Err(_) => Err(GitError::Timeout {
            args: format!("log --raw {commit} (last commit of {} paths)", paths.len()),
            secs: timeout.as_secs(),
        }),
    }
}

async fn walk(git: &Git, commit: &str, paths: &[String]) -> Result<Vec<Option<i64>>, GitError> {
    let mut w = Walk::new(paths);
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let start = w.commit(commit);
    w.waiting.insert(start, vec![0]);
    let mut merges = MergeDiffs::new(git.clone());
    let stream = git.stream(&[
        "log",
        "--no-show-signature",
        "--no-color",
        "--no-renames",
        "-r",
        "--raw",
        "-z",
        "--diff-merges=first-parent",
        "--format=%x01%H %ct %P",
        commit,
        "--",
    ])?;
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let io = |source| GitError::Io {
        context: format!("reading git log of {commit}"),
        source,
    };
    let mut tok = Vec::new();
    let mut current: Option<(u32, CommitData)> = None;
    loop {
        tok.clear();
        if r.read_until(0, &mut tok).await.map_err(io)? == 0 {
            break;
        }
        if tok.last() == Some(&0) {
            tok.pop();
        }
        let t = trim_newlines(&tok);
        if t.first() == Some(&HEADER) {
            if let Some((x, data)) = current.take() {
                w.read(x, data, &mut merges).await?;
                if w.waiting.is_empty() {
                    break; // every path answered: stop git log (killed on drop)
                }
            }
            current = Some(parse_header(&t[1..], &mut w)?);
        } else if t.first() == Some(&b':') {
            // No renames or copies: one path follows each raw entry, verbatim (-z).
            tok.clear();
            r.read_until(0, &mut tok).await.map_err(io)?;
            if tok.last() == Some(&0) {
                tok.pop();
            }
            if let (Some((_, data)), Some(&q)) = (current.as_mut(), w.path_index.get(&tok[..])) {
                data.changed.push(q);
            }
        } else if !t.is_empty() {
            return Err(GitError::Parse(format!(
                "git log record {:?}",
                String::from_utf8_lossy(t)
            )));
        }
    }
    if let Some((x, data)) = current.take() {
        w.read(x, data, &mut merges).await?;
    }
    Ok(w.answers())
}

fn trim_newlines(t: &[u8]) -> &[u8] {
    let start = t.iter().position(|&b| b != b'\n').unwrap_or(t.len());
    &t[start..]
}

fn parse_header(h: &[u8], w: &mut Walk) -> Result<(u32, CommitData), GitError> {
    let bad = || GitError::Parse(format!("git log header {:?}", String::from_utf8_lossy(h)));
    let h = std::str::from_utf8(h).map_err(|_| bad())?;
    let mut f = h.split(' ').filter(|s| !s.is_empty());
    let id = f.next().ok_or_else(bad)?;
    let ct = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let x = w.commit(id);
    let parents = f.map(|p| w.commit(p)).collect();
    Ok((
        x,
        CommitData {
            ct,
            parents,
            changed: Vec::new(),
        },
    ))
}

/// One commit as the walk needs it.
#[derive(Debug)]
struct CommitData {
    /// Committer time, Unix seconds.
    ct: i64,
    parents: Vec<u32>,
    /// Tracked paths changed against the first parent (all of them for a root commit).
    changed: Vec<u32>,
}

/// Where a group of paths is.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Still walking (parked in `Walk::waiting` or about to be processed).
    Walking,
    /// Answered: the committer time of the commit that shows the paths.
    Done(i64),
}

#[derive(Debug)]
struct Walk {
    path_index: HashMap<Vec<u8>, u32>,
    /// Group node of each path (follow `uf` to its root).
    path_node: Vec<u32>,
    uf: Vec<u32>,
    state: Vec<State>,
    commit_ids: Vec<String>,
    commit_index: HashMap<String, u32>,
    commits: Vec<Option<CommitData>>,
    /// Groups (root nodes) waiting for a commit not read yet.
    waiting: HashMap<u32, Vec<u32>>,
}

impl Walk {
    fn new(paths: &[String]) -> Self {
        let path_index = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_bytes().to_vec(), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        Self {
            path_index,
            path_node: vec![0; paths.len()],
            uf: vec![0],
            state: vec![State::Walking],
            commit_ids: Vec::new(),
            commit_index: HashMap::new(),
            commits: Vec::new(),
            waiting: HashMap::new(),
        }
    }

    fn commit(&mut self, id: &str) -> u32 {
        if let Some(&x) = self.commit_index.get(id) {
            return x;
        }
        let x = u32::try_from(self.commits.len()).unwrap_or(u32::MAX);
        self.commit_ids.push(id.to_owned());
        self.commit_index.insert(id.to_owned(), x);
        self.commits.push(None);
        x
    }

    fn find(&mut self, mut n: u32) -> u32 {
        while self.uf[n as usize] != n {
            let up = self.uf[self.uf[n as usize] as usize];
            self.uf[n as usize] = up;
            n = up;
        }
        n
    }

    fn node(&mut self, state: State) -> u32 {
        let n = u32::try_from(self.uf.len()).unwrap_or(u32::MAX);
        self.uf.push(n);
        self.state.push(state);
        n
    }

    /// Records commit `x` and moves the groups that were waiting for it.
    async fn read(
        &mut self,
        x: u32,
        data: CommitData,
        merges: &mut MergeDiffs,
    ) -> Result<(), GitError> {
        self.commits[x as usize] = Some(data);
        let Some(nodes) = self.waiting.remove(&x) else {
            return Ok(());
        };
        let root = nodes[0];
        for &n in &nodes[1..] {
            self.uf[n as usize] = root;
        }
        self.settle(vec![(x, root)], merges).await
    }

    /// Walks groups through commits already read; parks them at the first one not read yet.
    async fn settle(
        &mut self,
        mut work: Vec<(u32, u32)>,
        merges: &mut MergeDiffs,
    ) -> Result<(), GitError> {
        while let Some((x, node)) = work.pop() {
            let root = self.find(node);
            let Some(data) = self.commits[x as usize].as_ref() else {
                self.state[root as usize] = State::Walking;
                self.waiting.entry(x).or_default().push(root);
                continue;
            };
            let ct = data.ct;
            let parents = data.parents.clone();
            let changed = data.changed.clone();
            let Some((&first, others)) = parents.split_first() else {
                self.state[root as usize] = State::Done(ct);
                continue;
            };
            let mut leaving = Vec::new();
            for q in changed {
                if self.find(self.path_node[q as usize]) == root {
                    leaving.push(q);
                }
            }
            for &p in others {
                if leaving.is_empty() {
                    break;
                }
                let diff = merges
                    .changed(
                        &self.commit_ids[x as usize],
                        &self.commit_ids[p as usize],
                        &self.path_index,
                    )
                    .await?;
                let (still, same): (Vec<u32>, Vec<u32>) =
                    leaving.into_iter().partition(|q| diff.contains(q));
                if !same.is_empty() {
                    let n = self.node(State::Walking);
                    for q in same {
                        self.path_node[q as usize] = n;
                    }
                    work.push((p, n));
                }
                leaving = still;
            }
            if !leaving.is_empty() {
                let n = self.node(State::Done(ct));
                for q in leaving {
                    self.path_node[q as usize] = n;
                }
            }
            work.push((first, root));
        }
        Ok(())
    }

    fn answers(&mut self) -> Vec<Option<i64>> {
        (0..self.path_node.len())
            .map(|q| {
                let root = self.find(self.path_node[q]);
                match self.state[root as usize] {
                    State::Done(ct) => Some(ct),
                    State::Walking => None,
                }
            })
            .collect()
    }
}

/// `git diff-tree --stdin`, started on the first merge that needs it.
#[derive(Debug)]
struct MergeDiffs {
    git: Git,
    proc: Option<(Child, ChildStdin, BufReader<ChildStdout>)>,
}

impl MergeDiffs {
    fn new(git: Git) -> Self {
        Self { git, proc: None }
    }

    /// The tracked paths that differ between `commit` and its parent `parent`.
    async fn changed(
        &mut self,
        commit: &str,
        parent: &str,
        index: &HashMap<Vec<u8>, u32>,
    ) -> Result<HashSet<u32>, GitError> {
        if self.proc.is_none() {
            let mut child = self.git.spawn_coprocess(&[
                "diff-tree",
                "--stdin",
                "--always",
                "--no-renames",
                "-r",
                "-z",
            ])?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err(GitError::Parse(
                    "git diff-tree started without pipes".into(),
                ));
            };
            self.proc = Some((child, stdin, BufReader::new(stdout)));
        }
        let Some((_, stdin, out)) = self.proc.as_mut() else {
            return Err(GitError::Parse("git diff-tree is not running".into()));
        };
        let io = |source| GitError::Io {
            context: format!("git diff-tree {parent} {commit}"),
            source,
        };
        // The second line (the commit against itself) answers with its header alone and marks
        // the end of the first answer; diff-tree flushes after every line.
        stdin
            .write_all(format!("{commit} {parent}\n{commit} {commit}\n").as_bytes())
            .await
            .map_err(io)?;
        stdin.flush().await.map_err(io)?;
        let mut tok = Vec::new();
        let mut headers = 0;
        let mut changed = HashSet::new();
        while headers < 2 {
            tok.clear();
            if out.read_until(0, &mut tok).await.map_err(io)? == 0 {
                self.proc = None;
                return Err(GitError::Parse(format!(
                    "git diff-tree {parent} {commit} ended early"
                )));
            }
            if tok.last() == Some(&0) {
                tok.pop();
            }
            let t = trim_newlines(&tok);
            if t.first() == Some(&b':') {
                tok.clear();
                out.read_until(0, &mut tok).await.map_err(io)?;
                if tok.last() == Some(&0) {
                    tok.pop();
                }
                if let Some(&q) = index.get(&tok[..]) {
                    changed.insert(q);
                }
            } else if !t.is_empty() {
                headers += 1;
            }
        }
        Ok(changed)
    }
}
