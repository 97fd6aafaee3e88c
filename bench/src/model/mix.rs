//! Mixed loads (`--mix NAME:WEIGHT:PARAM=V[&PARAM=V…],…`): requests that are not all alike,
//! as named classes, each a weight and its `/test` query. A mix runs on bench's own client
//! (`bench load`), which draws each request's class by weight and records every answer's
//! latency in its class, so that each class has its own spectrum.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most classes in one mix.
pub const MAX_CLASSES: usize = 16;

/// One class of a mix: its name, its weight among the others, and the query its requests ask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    pub name: String,
    pub weight: u32,
    /// `/test`'s parameters, in the order given.
    pub query: Vec<(String, String)>,
}

impl Class {
    /// `delay_ms=0&work=10`.
    pub fn query_string(&self) -> String {
        self.query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A parameter's value, as a number.
    pub fn number(&self, name: &str) -> Option<u32> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The backend it asks for, when it says.
    pub fn backend(&self) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == "backend")
            .map(|(_, v)| v.as_str())
    }
}

/// A mix: its classes, each at least one request in `total_weight`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    pub classes: Vec<Class>,
}

impl Mix {
    pub fn total_weight(&self) -> u32 {
        self.classes.iter().map(|c| c.weight).sum()
    }

    /// The weighted mean of `value` over the classes.
    pub fn mean(&self, value: impl Fn(&Class) -> f64) -> f64 {
        let total = f64::from(self.total_weight().max(1));
        self.classes
            .iter()
            .map(|c| f64::from(c.weight) * value(c))
            .sum::<f64>()
            / total
    }

    /// The same mix with only its first class: the load without the others, to compare the
    /// first class with and without them.
    pub fn first_alone(&self) -> Mix {
        Mix {
            classes: self.classes.iter().take(1).cloned().collect(),
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let classes: Vec<String> = self
            .classes
            .iter()
            .map(|c| format!("{}:{}:{}", c.name, c.weight, c.query_string()))
            .collect();
        f.write_str(&classes.join(","))
    }
}

/// Parses `NAME:WEIGHT:PARAM=V[&PARAM=V…],…`. Every value is checked as the contract checks
/// the parameter, so that a mix no target would answer is refused before the load; the
/// message names what is wrong, in one line.
pub fn parse(text: &str) -> Result<Mix, String> {
    let mut classes: Vec<Class> = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let mut fields = part.trim().splitn(3, ':');
        let (name, weight, query) = (fields.next(), fields.next(), fields.next());
        let (Some(name), Some(weight)) = (name, weight) else {
            return Err(format!(
                "{part:?}: expected NAME:WEIGHT:PARAM=V[&PARAM=V…], e.g. fast:90:delay_ms=0"
            ));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "{part:?}: a class name is letters, digits, - and _, got {name:?}"
            ));
        }
        if classes.iter().any(|c| c.name == name) {
            return Err(format!("class {name:?} is given twice"));
        }
        let weight = match weight.parse::<u32>() {
            Ok(w) if (1..=1_000_000).contains(&w) => w,
            _ => {
                return Err(format!(
                "class {name}: the weight must be a whole number from 1 to 1000000, got {weight:?}"
            ))
            }
        };
        let query = parse_query(name, query.unwrap_or(""))?;
        classes.push(Class {
            name: name.to_string(),
            weight,
            query,
        });
    }
    if classes.is_empty() {
        return Err("the mix has no class: give NAME:WEIGHT:PARAM=V,…".into());
    }
    if classes.len() > MAX_CLASSES {
        return Err(format!("{} classes: at most {MAX_CLASSES}", classes.len()));
    }
    Ok(Mix { classes })
}

/// A class's `PARAM=V&…`, each parameter one `/test` takes, at most once, with a value the
/// contract accepts.
fn parse_query(class: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut query: Vec<(String, String)> = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("class {class}: {pair:?} is not PARAM=V"))?;
        if query.iter().any(|(k, _)| k == key) {
            return Err(format!("class {class}: {key} is given twice"));
        }
        let ok = match key {
            "delay_ms" => shared::config::delay_ms(value).is_some(),
            "work" => shared::config::work(value).is_some(),
            "fanout" => value
                .parse::<u8>()
                .is_ok_and(|k| (1..=shared::config::MAX_FANOUT).contains(&k)),
            "backend" => shared::Backend::from_name(value).is_some(),
            "id" => value.parse::<i32>().is_ok_and(|id| id >= 1),
            _ => {
                return Err(format!(
                    "class {class}: unknown parameter {key:?}; a class takes delay_ms, work, fanout, backend and id"
                ))
            }
        };
        if !ok {
            return Err(format!(
                "class {class}: {key}={value:?} is not a value /test accepts (docs/contract.md)"
            ));
        }
        query.push((key.to_string(), value.to_string()));
    }
    if query.iter().any(|(k, v)| k == "fanout" && v != "1")
        && !query.iter().any(|(k, v)| k == "backend" && v == "upstream")
    {
        return Err(format!(
            "class {class}: fanout asks for upstream pages; add backend=upstream"
        ));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_parses_into_classes_and_prints_back() {
        let mix = parse("fast:90:delay_ms=0,slow:10:delay_ms=200&work=5").unwrap();
        assert_eq!(mix.classes.len(), 2);
        assert_eq!(mix.total_weight(), 100);
        assert_eq!(mix.classes[1].query_string(), "delay_ms=200&work=5");
        assert_eq!(mix.classes[1].number("delay_ms"), Some(200));
        assert_eq!(
            mix.to_string(),
            "fast:90:delay_ms=0,slow:10:delay_ms=200&work=5"
        );
        assert_eq!(parse(&mix.to_string()).unwrap(), mix);
        // The mean wait: 0.9 × 0 + 0.1 × 200 ms.
        let wait = mix.mean(|c| f64::from(c.number("delay_ms").unwrap_or(0)));
        assert!((wait - 20.0).abs() < 1e-9);
        assert_eq!(mix.first_alone().to_string(), "fast:90:delay_ms=0");
        assert_eq!(parse("plain:1:").unwrap().classes[0].query, []);
    }

    #[test]
    fn a_bad_mix_is_refused_in_one_line_naming_what_is_wrong() {
        for (text, says) in [
            ("", "no class"),
            ("fast", "NAME:WEIGHT"),
            ("fast:x:delay_ms=0", "weight"),
            ("fast:0:delay_ms=0", "weight"),
            ("f a:1:delay_ms=0", "class name"),
            ("a:1:,a:2:", "twice"),
            ("a:1:delay_ms=10001", "delay_ms"),
            ("a:1:work=100001", "work"),
            ("a:1:fanout=17&backend=upstream", "fanout"),
            ("a:1:fanout=4", "backend=upstream"),
            ("a:1:backend=redis", "backend"),
            ("a:1:sleep=5", "unknown parameter"),
            ("a:1:delay_ms", "PARAM=V"),
            ("a:1:delay_ms=1&delay_ms=2", "twice"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(says), "{text:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("c{i}:1:")).collect();
        assert!(parse(&many.join(",")).unwrap_err().contains("at most 16"));
    }
}
