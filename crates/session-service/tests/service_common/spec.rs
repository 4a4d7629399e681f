//! Checks a reply of the service against its OpenAPI document: the route and method are in the
//! document (or the reply is the JSON 404/405 of an unknown one), the status is one the
//! operation lists, the body is JSON and matches the listed schema. The harness's client runs
//! every reply of the tests through this, so the document and the server cannot drift apart
//! unnoticed.
//!
//! The schema subset is the one the document uses: $ref, allOf, oneOf, nullable, type,
//! properties, required, additionalProperties: false, items, enum, pattern (anchored character
//! classes, literals, groups with alternation, and the ?, *, + and {m,n} quantifiers), minLength,
//! maxLength, minimum, maximum and the uuid format.

use serde_json::Value;

pub struct Spec {
    doc: Value,
}

impl Spec {
    pub fn load() -> Self {
        let doc = serde_json::from_str(vault_session_service::api::OPENAPI_JSON).expect("the OpenAPI document is JSON");
        Spec { doc }
    }

    fn operation(&self, method: &str, path: &str) -> Option<(&str, &Value)> {
        let segs: Vec<&str> = path.split('/').collect();
        let paths = self.doc["paths"].as_object()?;
        let mut found = None;
        for (template, item) in paths {
            let t: Vec<&str> = template.split('/').collect();
            let matches = t.len() == segs.len()
                && t.iter().zip(&segs).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s);
            if matches {
                // A literal route wins over a templated one.
                let literal = !template.contains('{');
                if found.is_none() || literal {
                    found = Some((template.as_str(), item));
                }
            }
        }
        let (template, item) = found?;
        Some((template, item.get(method.to_ascii_lowercase())?))
    }

    /// Ok, or what disagrees.
    pub fn check(
        &self,
        method: &str,
        path_and_query: &str,
        status: u16,
        content_type: Option<&str>,
        body: &Value,
    ) -> Result<(), String> {
        let path = path_and_query.split('?').next().unwrap_or("");
        let ctx = format!("{method} {path_and_query} -> {status} {body}");
        if !content_type.is_some_and(|c| c.starts_with("application/json")) {
            return Err(format!("{ctx}: Content-Type {content_type:?} is not application/json"));
        }
        let Some((template, op)) = self.operation(method, path) else {
            // Unknown route or method: the JSON error.
            if status != 404 && status != 405 {
                return Err(format!("{ctx}: not in the document, and not answered 404/405"));
            }
            return self
                .validate(&serde_json::json!({"$ref": "#/components/schemas/Error"}), body, "body")
                .map_err(|e| format!("{ctx}: {e}"));
        };
        let responses = &op["responses"];
        let response = responses.get(status.to_string()).or_else(|| responses.get("default"));
        let Some(response) = response else {
            return Err(format!("{ctx}: status {status} is not listed for {method} {template}"));
        };
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            return Err(format!("{ctx}: the response has no JSON schema in the document"));
        }
        self.validate(schema, body, "body").map_err(|e| format!("{ctx}: {e}"))
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let mut v = &self.doc;
                for part in r.trim_start_matches("#/").split('/') {
                    v = &v[part];
                }
                self.resolve(v)
            }
            None => schema,
        }
    }

    fn validate(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if v.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return Ok(());
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.validate(s, v, at)?;
            }
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let n = one.iter().filter(|s| self.validate(s, v, at).is_ok()).count();
            if n != 1 {
                return Err(format!("{at}: matches {n} of the oneOf schemas"));
            }
        }
        if let Some(t) = schema.get("type").and_then(Value::as_str) {
            let ok = match t {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "integer" => v.is_i64() || v.is_u64(),
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                _ => true,
            };
            if !ok {
                return Err(format!("{at}: {v} is not of type {t}"));
            }
        }
        if let Some(e) = schema.get("enum").and_then(Value::as_array) {
            if !e.contains(v) {
                return Err(format!("{at}: {v} is not one of {e:?}"));
            }
        }
        if let Value::Object(o) = v {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !o.contains_key(r) {
                        return Err(format!("{at}: required {r} is missing"));
                    }
                }
            }
            for (k, val) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => self.validate(s, val, &format!("{at}.{k}"))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) || props.is_some() => {
                        return Err(format!("{at}: {k} is not in the document"))
                    }
                    None => {}
                }
            }
        }
        if let (Value::Array(a), Some(items)) = (v, schema.get("items")) {
            for (i, item) in a.iter().enumerate() {
                self.validate(items, item, &format!("{at}[{i}]"))?;
            }
        }
        if let Value::String(s) = v {
            let n = s.chars().count() as u64;
            if schema.get("minLength").and_then(Value::as_u64).is_some_and(|m| n < m) {
                return Err(format!("{at}: {s:?} is shorter than minLength"));
            }
            if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|m| n > m) {
                return Err(format!("{at}: {s:?} is longer than maxLength"));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                if !pattern_matches(p, s) {
                    return Err(format!("{at}: {s:?} does not match {p}"));
                }
            }
            if schema.get("format").and_then(Value::as_str) == Some("uuid") && uuid::Uuid::parse_str(s).is_err() {
                return Err(format!("{at}: {s:?} is not a uuid"));
            }
        }
        if let Some(x) = v.as_f64() {
            if schema.get("minimum").and_then(Value::as_f64).is_some_and(|m| x < m) {
                return Err(format!("{at}: {x} is below the minimum"));
            }
            if schema.get("maximum").and_then(Value::as_f64).is_some_and(|m| x > m) {
                return Err(format!("{at}: {x} is above the maximum"));
            }
        }
        Ok(())
    }
}

// ----- the patterns' subset of regular expressions -----

#[derive(Debug)]
enum Atom {
    Class(Vec<(char, char)>),
    Group(Vec<Vec<Piece>>),
}

#[derive(Debug)]
struct Piece {
    atom: Atom,
    min: usize,
    max: usize,
}

fn parse_alternatives(p: &[char], i: &mut usize) -> Vec<Vec<Piece>> {
    let mut alts = vec![vec![]];
    while *i < p.len() {
        let c = p[*i];
        let atom = match c {
            ')' => break,
            '|' => {
                *i += 1;
                alts.push(vec![]);
                continue;
            }
            '(' => {
                *i += 1;
                if p.get(*i) == Some(&'?') && p.get(*i + 1) == Some(&':') {
                    *i += 2;
                }
                let inner = parse_alternatives(p, i);
                assert_eq!(p.get(*i), Some(&')'), "unclosed group");
                *i += 1;
                Atom::Group(inner)
            }
            '[' => {
                *i += 1;
                let mut ranges = vec![];
                while p[*i] != ']' {
                    let lo = p[*i];
                    if p.get(*i + 1) == Some(&'-') && p.get(*i + 2).is_some_and(|c| *c != ']') {
                        ranges.push((lo, p[*i + 2]));
                        *i += 3;
                    } else {
                        ranges.push((lo, lo));
                        *i += 1;
                    }
                }
                *i += 1;
                Atom::Class(ranges)
            }
            '\\' => {
                *i += 2;
                Atom::Class(vec![(p[*i - 1], p[*i - 1])])
            }
            c => {
                *i += 1;
                Atom::Class(vec![(c, c)])
            }
        };
        let (min, max) = match p.get(*i) {
            Some('?') => (0, 1),
            Some('*') => (0, usize::MAX),
            Some('+') => (1, usize::MAX),
            Some('{') => {
                let end = p[*i..].iter().position(|c| *c == '}').expect("unclosed {") + *i;
                let spec: String = p[*i + 1..end].iter().collect();
                let (lo, hi) = match spec.split_once(',') {
                    Some((lo, "")) => (lo.parse().unwrap(), usize::MAX),
                    Some((lo, hi)) => (lo.parse().unwrap(), hi.parse().unwrap()),
                    None => (spec.parse().unwrap(), spec.parse().unwrap()),
                };
                *i = end;
                (lo, hi)
            }
            _ => {
                alts.last_mut().unwrap().push(Piece { atom, min: 1, max: 1 });
                continue;
            }
        };
        *i += 1;
        alts.last_mut().unwrap().push(Piece { atom, min, max });
    }
    alts
}

/// Every position a sequence of pieces can end at, starting at `at`.
fn ends_seq(seq: &[Piece], s: &[char], at: usize) -> Vec<usize> {
    let Some((first, rest)) = seq.split_first() else {
        return vec![at];
    };
    let mut out = vec![];
    let mut frontier = vec![at];
    let mut count = 0;
    loop {
        if count >= first.min {
            for &f in &frontier {
                out.extend(ends_seq(rest, s, f));
            }
        }
        if count == first.max || frontier.is_empty() {
            break;
        }
        let mut next = vec![];
        for &f in &frontier {
            next.extend(ends_atom(&first.atom, s, f));
        }
        next.sort_unstable();
        next.dedup();
        // No progress: stop (an empty match repeated).
        if next == frontier {
            break;
        }
        frontier = next;
        count += 1;
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn ends_atom(atom: &Atom, s: &[char], at: usize) -> Vec<usize> {
    match atom {
        Atom::Class(ranges) => match s.get(at) {
            Some(c) if ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) => vec![at + 1],
            _ => vec![],
        },
        Atom::Group(alts) => alts.iter().flat_map(|seq| ends_seq(seq, s, at)).collect(),
    }
}

/// Whether `s` matches `pattern` (anchored with ^ and $, as every pattern of the document is).
pub fn pattern_matches(pattern: &str, s: &str) -> bool {
    let inner = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).expect("patterns are anchored");
    let p: Vec<char> = inner.chars().collect();
    let mut i = 0;
    let alts = parse_alternatives(&p, &mut i);
    let s: Vec<char> = s.chars().collect();
    alts.iter().any(|seq| ends_seq(seq, &s, 0).contains(&s.len()))
}

#[test]
fn patterns_of_the_document() {
    assert!(pattern_matches("^[1-9][0-9]{0,18}$", "5"));
    assert!(!pattern_matches("^[1-9][0-9]{0,18}$", "05"));
    assert!(!pattern_matches("^[1-9][0-9]{0,18}$", "12345678901234567890"));
    assert!(pattern_matches("^(0|[1-9][0-9]{0,18})$", "0"));
    assert!(!pattern_matches("^(0|[1-9][0-9]{0,18})$", "00"));
    assert!(pattern_matches("^[1-9A-HJ-NP-Za-km-z]{32,44}$", "11111111111111111111111111111111"));
    assert!(!pattern_matches("^[1-9A-HJ-NP-Za-km-z]{32,44}$", "0OIl0OIl0OIl0OIl0OIl0OIl0OIl0OIl"));
    assert!(pattern_matches("^[ -~]+$", "test-device-1"));
    assert!(!pattern_matches("^[ -~]+$", ""));
}

#[test]
fn the_checker_sees_disagreements() {
    let spec = Spec::load();
    let json = Some("application/json");
    let error = serde_json::json!({"error": {"code": "not_found", "message": "no such session"}});
    assert!(spec.check("GET", "/v1/sessions/x", 404, json, &error).is_ok());
    assert!(spec.check("GET", "/v1/sessions/x", 500, json, &error).is_err(), "an unlisted status");
    assert!(spec.check("GET", "/v1/sessions/x", 404, Some("text/plain"), &error).is_err(), "not JSON");
    assert!(spec.check("DELETE", "/v1/sessions", 405, json, &error).is_ok());
    assert!(spec.check("DELETE", "/v1/sessions", 200, json, &error).is_err());
    let analytics = serde_json::json!({"session_id": "s", "total_trades": 0, "avg_trade_size": null});
    assert!(spec.check("GET", "/v1/sessions/x/analytics", 200, json, &analytics).is_ok());
    let extra = serde_json::json!({"session_id": "s", "undocumented": 1});
    assert!(spec.check("GET", "/v1/sessions/x/analytics", 200, json, &extra).is_err(), "an undocumented field");
    let bad_amount = serde_json::json!({"total_volume": "-1"});
    assert!(spec.check("GET", "/v1/sessions/x/analytics", 200, json, &bad_amount).is_err(), "a pattern");
}
