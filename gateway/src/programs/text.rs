//! Program texts: `{variable}`s in step messages, milestone messages and template parameters.

use std::collections::HashMap;

/// The `{variable}` names in a text (`{{` and `}}` are literal braces).
pub fn variables_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if rest[open..].starts_with("{{") {
            rest = &rest[open + 2..];
            continue;
        }
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(after[..close].trim().to_owned());
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

/// Replace `{variable}`s with their values (unknown ones stay as written).
pub fn fill(text: &str, values: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            out.push('}');
            rest = after;
            continue;
        }
        match tail[1..].find('}') {
            Some(close) => {
                let name = tail[1..=close].trim();
                match values.get(name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&tail[..close + 2]),
                }
                rest = &tail[close + 2..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_filled_and_braces_escape() {
        let values = HashMap::from([("first_name".to_string(), "Ana".to_string())]);
        assert_eq!(
            fill("Hi {first_name}! {{literal}} {unknown}", &values),
            "Hi Ana! {literal} {unknown}"
        );
        assert_eq!(variables_in("a {x} {{y}} {z"), vec!["x".to_string()]);
        assert_eq!(fill("unclosed {x", &values), "unclosed {x");
    }
}
