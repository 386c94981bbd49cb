//! Kubernetes label selectors, as `kubectl -l` and the API server take
//! them: comma-separated requirements, equality-based (`k=v`, `k==v`,
//! `k!=v`), set-based (`k in (a,b)`, `k notin (a,b)`, `k`, `!k`) and the
//! integer comparisons (`k>1`, `k<9`). Pure: text in, requirements or the
//! fault out.

use crate::node::inventory::Requirement;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Open,
    Close,
    Comma,
    Not,
    Eq,
    NotEq,
    Gt,
    Lt,
}

fn tokens(s: &str) -> Result<Vec<Token<'_>>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let two = |c: u8| b.get(i + 1) == Some(&c);
        let (t, n) = match b[i] {
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => (Token::Open, 1),
            b')' => (Token::Close, 1),
            b',' => (Token::Comma, 1),
            b'!' if two(b'=') => (Token::NotEq, 2),
            b'!' => (Token::Not, 1),
            b'=' if two(b'=') => (Token::Eq, 2),
            b'=' => (Token::Eq, 1),
            b'>' => (Token::Gt, 1),
            b'<' => (Token::Lt, 1),
            _ => {
                let len = b[i..]
                    .iter()
                    .position(|c| c.is_ascii_whitespace() || b"(),!=<>".contains(c))
                    .unwrap_or(b.len() - i);
                (Token::Word(&s[i..i + len]), len)
            }
        };
        out.push(t);
        i += n;
    }
    Ok(out)
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of
/// at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn key(k: &str) -> Result<String, String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
    });
    if prefix_ok && name_ok(name) && !name.is_empty() {
        Ok(k.to_owned())
    } else {
        Err(format!("invalid label key {k:?}"))
    }
}

/// A label value: empty, or a name as in [`key`].
fn value(v: &str) -> Result<String, String> {
    if name_ok(v) {
        Ok(v.to_owned())
    } else {
        Err(format!("invalid label value {v:?}"))
    }
}

fn name_ok(n: &str) -> bool {
    let b = n.as_bytes();
    n.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b.first().is_none_or(u8::is_ascii_alphanumeric)
        && b.last().is_none_or(u8::is_ascii_alphanumeric)
}

/// Parses a label selector; empty selects everything.
///
/// # Errors
///
/// The first fault, saying what was expected where.
pub(crate) fn parse(s: &str) -> Result<Vec<Requirement>, String> {
    let toks = tokens(s)?;
    let mut it = toks.into_iter().peekable();
    let mut out = Vec::new();
    let word = |t: Option<Token<'_>>, what: &str| match t {
        Some(Token::Word(w)) => Ok(w.to_owned()),
        other => Err(format!("expected {what}, found {}", shown(other.as_ref()))),
    };
    while it.peek().is_some() {
        let req = match it.next() {
            Some(Token::Not) => {
                Requirement::NotExists(key(&word(it.next(), "a label key after '!'")?)?)
            }
            Some(Token::Word(k)) => {
                let k = key(k)?;
                match it.peek() {
                    None | Some(Token::Comma) => Requirement::Exists(k),
                    Some(Token::Eq | Token::NotEq) => {
                        let neq = it.next() == Some(Token::NotEq);
                        // `k=` is the empty value.
                        let v = match it.peek() {
                            Some(Token::Word(_)) => value(&word(it.next(), "a value")?)?,
                            _ => String::new(),
                        };
                        if neq {
                            Requirement::NotEq(k, v)
                        } else {
                            Requirement::Eq(k, v)
                        }
                    }
                    Some(Token::Gt | Token::Lt) => {
                        let gt = it.next() == Some(Token::Gt);
                        let n = word(it.next(), "an integer")?;
                        let n: i64 = n
                            .parse()
                            .map_err(|_| format!("{n:?} is not an integer (for '>' and '<')"))?;
                        if gt {
                            Requirement::Gt(k, n)
                        } else {
                            Requirement::Lt(k, n)
                        }
                    }
                    Some(Token::Word(op @ ("in" | "notin"))) => {
                        let notin = *op == "notin";
                        it.next();
                        if it.next() != Some(Token::Open) {
                            return Err(format!("expected '(' after {}", if notin { "notin" } else { "in" }));
                        }
                        let mut set = Vec::new();
                        loop {
                            match it.next() {
                                Some(Token::Word(v)) => set.push(value(v)?),
                                Some(Token::Close) if set.is_empty() => {
                                    return Err(format!("the set of {k:?} is empty"))
                                }
                                other => {
                                    return Err(format!("expected a value, found {}", shown(other.as_ref())))
                                }
                            }
                            match it.next() {
                                Some(Token::Comma) => {}
                                Some(Token::Close) => break,
                                other => {
                                    return Err(format!("expected ',' or ')', found {}", shown(other.as_ref())))
                                }
                            }
                        }
                        set.sort();
                        set.dedup();
                        if notin {
                            Requirement::NotIn(k, set)
                        } else {
                            Requirement::In(k, set)
                        }
                    }
                    Some(other) => {
                        return Err(format!(
                            "expected '=', '==', '!=', 'in', 'notin', '>', '<', ',' or the end after {k:?}, found {}",
                            shown(Some(other))
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "expected a requirement, found {}",
                    shown(other.as_ref())
                ))
            }
        };
        out.push(req);
        match it.next() {
            None => break,
            Some(Token::Comma) if it.peek().is_some() => {}
            other => {
                return Err(format!(
                    "expected ',' between requirements, found {}",
                    shown(other.as_ref())
                ))
            }
        }
    }
    Ok(out)
}

fn shown(t: Option<&Token<'_>>) -> String {
    match t {
        None => "the end".into(),
        Some(Token::Word(w)) => format!("{w:?}"),
        Some(Token::Open) => "'('".into(),
        Some(Token::Close) => "')'".into(),
        Some(Token::Comma) => "','".into(),
        Some(Token::Not) => "'!'".into(),
        Some(Token::Eq) => "'='".into(),
        Some(Token::NotEq) => "'!='".into(),
        Some(Token::Gt) => "'>'".into(),
        Some(Token::Lt) => "'<'".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::inventory::selector_matches;
    use Requirement::*;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn every_kind_of_requirement() {
        let r = parse("app=web, tier!=db, env in (prod, staging), track notin (canary), x, !y, a==b, n>1, m<9, e=").unwrap();
        assert_eq!(
            r,
            vec![
                Eq(s("app"), s("web")),
                NotEq(s("tier"), s("db")),
                In(s("env"), vec![s("prod"), s("staging")]),
                NotIn(s("track"), vec![s("canary")]),
                Exists(s("x")),
                NotExists(s("y")),
                Eq(s("a"), s("b")),
                Gt(s("n"), 1),
                Lt(s("m"), 9),
                Eq(s("e"), s("")),
            ]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(
            parse("example.com/team in (a)").unwrap(),
            vec![In(s("example.com/team"), vec![s("a")])]
        );
    }

    #[test]
    fn faults_are_named() {
        for (bad, says) in [
            ("a b=c", "expected '=', '=='"),
            ("a=b c", "expected ','"),
            ("env in prod", "expected '('"),
            ("env in ()", "empty"),
            ("env in (a b)", "expected ',' or ')'"),
            ("env in (a,", "expected a value"),
            ("a=b,", "expected ','"),
            ("n>x", "not an integer"),
            ("!", "a label key"),
            ("-a=b", "invalid label key"),
            ("a=b-", "invalid label value"),
            ("=b", "expected a requirement"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn matching_follows_kubernetes() {
        let labels = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (s(k), s(v))).collect();
        let l = labels(&[("env", "prod"), ("n", "5")]);
        let m = |sel: &str| selector_matches(&parse(sel).unwrap(), &l);
        assert!(m("env in (prod,staging)"));
        assert!(!m("env notin (prod)"));
        // Absent keys: `notin` and `!=` match, `in` does not.
        assert!(m("track notin (canary)") && m("track!=x") && !m("track in (x)"));
        assert!(m("n>4") && !m("n>5") && m("n<6") && !m("env>1"));
        assert!(m("") && m("env") && !m("!env"));
    }
}
