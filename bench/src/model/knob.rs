//! Knobs and points: the flags of `bench run` that a sweep can vary (`--vary KNOB=V1,V2,…`),
//! their values, and the points of a sweep (one value per varied knob). [`Knob::apply`] is
//! the one place that knows how a knob sets [`Settings`]; the command-line flags of the same
//! names go through it too.

use std::fmt;
use std::ops::RangeInclusive;

use anyhow::{bail, Result};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use shared::{Backend, Binary, DbMode};

use super::settings::{Settings, Via};
use super::tool::ToolKind;

/// A flag of `bench run` that a sweep can vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Knob {
    DelayMs,
    Work,
    Fanout,
    Connections,
    PoolSize,
    Workers,
    Rate,
    Backend,
    Via,
    DbMode,
}

impl Knob {
    pub const ALL: [Knob; 10] = [
        Knob::DelayMs,
        Knob::Work,
        Knob::Fanout,
        Knob::Connections,
        Knob::PoolSize,
        Knob::Workers,
        Knob::Rate,
        Knob::Backend,
        Knob::Via,
        Knob::DbMode,
    ];

    /// The flag's name, as `bench run` spells it (without `--`).
    pub fn name(self) -> &'static str {
        match self {
            Knob::DelayMs => "delay-ms",
            Knob::Work => "work",
            Knob::Fanout => "fanout",
            Knob::Connections => "connections",
            Knob::PoolSize => "pool-size",
            Knob::Workers => "workers",
            Knob::Rate => "rate",
            Knob::Backend => "backend",
            Knob::Via => "via",
            Knob::DbMode => "db-mode",
        }
    }

    pub fn from_name(name: &str) -> Option<Knob> {
        Knob::ALL.into_iter().find(|k| k.name() == name)
    }

    fn names() -> String {
        Knob::ALL.map(Knob::name).join(", ")
    }

    /// The values a numeric knob takes, the same for its `bench run` flag and for `--vary`:
    /// `None` for the knobs that take a word.
    pub fn range(self) -> Option<RangeInclusive<u32>> {
        match self {
            Knob::DelayMs => Some(0..=shared::config::MAX_DELAY_MS),
            Knob::Work => Some(0..=shared::work::MAX_WORK),
            Knob::Fanout => Some(1..=u32::from(shared::config::MAX_FANOUT)),
            Knob::Connections => Some(1..=100_000),
            Knob::PoolSize => Some(1..=10_000),
            Knob::Workers => Some(1..=1024),
            Knob::Rate => Some(1..=10_000_000),
            Knob::Backend | Knob::Via | Knob::DbMode => None,
        }
    }

    /// The parser of a numeric knob's `bench run` flag: a whole number in [`Knob::range`],
    /// refused by clap with the flag's name otherwise.
    pub fn flag_parser(self) -> clap::builder::RangedI64ValueParser<u32> {
        let range = self.range().unwrap_or(0..=u32::MAX);
        clap::value_parser!(u32).range(i64::from(*range.start())..=i64::from(*range.end()))
    }

    /// A value of this knob, checked as `bench run` would check its flag.
    fn parse_value(self, text: &str) -> Result<Value, String> {
        let text = text.trim();
        match self {
            Knob::Backend => Backend::from_name(text)
                .map(|_| Value::Word(text.to_string()))
                .ok_or_else(|| format!("backend: {text:?} is not db or upstream")),
            Knob::Via => match text {
                "nginx" | "direct" => Ok(Value::Word(text.to_string())),
                _ => Err(format!("via: {text:?} is not nginx or direct")),
            },
            Knob::DbMode => DbMode::from_name(text)
                .map(|_| Value::Word(text.to_string()))
                .ok_or_else(|| format!("db-mode: {text:?} is not pool or pipelined")),
            Knob::DelayMs
            | Knob::Work
            | Knob::Fanout
            | Knob::Connections
            | Knob::PoolSize
            | Knob::Workers
            | Knob::Rate => {
                let range = self.range().unwrap_or(0..=u32::MAX);
                match text.parse::<u32>() {
                    Ok(n) if range.contains(&n) => Ok(Value::Number(n)),
                    _ => Err(format!(
                        "{}: {text:?} is not a whole number from {} to {}",
                        self.name(),
                        range.start(),
                        range.end()
                    )),
                }
            }
        }
    }

    /// Sets this knob in `settings`.
    pub fn apply(self, value: &Value, settings: &mut Settings) {
        match (self, value) {
            (Knob::DelayMs, Value::Number(n)) => settings.delay_ms = *n,
            (Knob::Work, Value::Number(n)) => settings.work = *n,
            (Knob::Fanout, Value::Number(n)) => settings.fanout = *n as u8,
            (Knob::Connections, Value::Number(n)) => settings.connections = *n,
            (Knob::PoolSize, Value::Number(n)) => settings.sessions = *n,
            (Knob::Workers, Value::Number(n)) => {
                settings.sync_workers = Some(*n);
                settings.async_workers = Some(*n);
            }
            (Knob::Rate, Value::Number(n)) => settings.rate = Some(*n),
            (Knob::Backend, Value::Word(w)) => {
                settings.backend = Backend::from_name(w).unwrap_or(settings.backend)
            }
            (Knob::DbMode, Value::Word(w)) => {
                settings.db_mode = DbMode::from_name(w).unwrap_or(settings.db_mode)
            }
            (Knob::Via, Value::Word(w)) => {
                settings.via = if w == "direct" {
                    Via::Direct
                } else {
                    Via::Nginx
                }
            }
            _ => {}
        }
    }
}

impl fmt::Display for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A knob's value: a number, or a word (`db`, `direct`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(u32),
    Word(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Word(w) => f.write_str(w),
        }
    }
}

/// One `--vary KNOB=V1,V2,…`.
#[derive(Clone, Debug, PartialEq)]
pub struct Vary {
    pub knob: Knob,
    pub values: Vec<Value>,
}

/// Parses `KNOB=V1,V2,…`; the message names what is wrong.
pub fn parse_vary(text: &str) -> Result<Vary, String> {
    let (name, list) = text.split_once('=').ok_or_else(|| {
        format!(
            "{text:?}: expected KNOB=V1,V2,… with KNOB one of {}",
            Knob::names()
        )
    })?;
    let knob = Knob::from_name(name.trim())
        .ok_or_else(|| format!("unknown knob {:?}; knobs: {}", name.trim(), Knob::names()))?;
    let values = list
        .split(',')
        .filter(|v| !v.trim().is_empty())
        .map(|v| knob.parse_value(v))
        .collect::<Result<Vec<_>, _>>()?;
    if values.is_empty() {
        return Err(format!("{knob}: the list of values is empty"));
    }
    Ok(Vary { knob, values })
}

/// Knobs given twice are an error, not a silent override.
pub fn check_distinct(varies: &[Vary]) -> Result<(), String> {
    for (i, vary) in varies.iter().enumerate() {
        if varies[..i].iter().any(|v| v.knob == vary.knob) {
            return Err(format!("--vary {} is given twice", vary.knob));
        }
    }
    Ok(())
}

/// A point of a sweep: one value per varied knob, in the order the knobs were given.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point(pub Vec<(Knob, Value)>);

impl Point {
    /// `delay-ms=20 connections=100`.
    pub fn label(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn get(&self, knob: Knob) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == knob).map(|(_, v)| v)
    }

    /// The same point without `knob`: the series a rate sweep draws one curve of.
    pub fn without(&self, knob: Knob) -> Point {
        Point(self.0.iter().filter(|(k, _)| *k != knob).cloned().collect())
    }

    pub fn apply(&self, settings: &mut Settings) {
        for (knob, value) in &self.0 {
            knob.apply(value, settings);
        }
    }
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (knob, value) in &self.0 {
            map.serialize_entry(knob.name(), value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Point, D::Error> {
        struct PointVisitor;
        impl<'de> Visitor<'de> for PointVisitor {
            type Value = Point;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of knob names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Point, A::Error> {
                let mut values = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    let knob = Knob::from_name(&name).ok_or_else(|| {
                        serde::de::Error::custom(format!("unknown knob {name:?}"))
                    })?;
                    values.push((knob, value));
                }
                Ok(Point(values))
            }
        }
        deserializer.deserialize_map(PointVisitor)
    }
}

/// Every point of the cartesian product, the first knob varying slowest.
pub fn points(varies: &[Vary]) -> Vec<Point> {
    let mut points = vec![Point(Vec::new())];
    for vary in varies {
        points = points
            .into_iter()
            .flat_map(|point| {
                vary.values.iter().map(move |value| {
                    let mut values = point.0.clone();
                    values.push((vary.knob, value.clone()));
                    Point(values)
                })
            })
            .collect();
    }
    points
}

/// The order in which the targets run at point `index`: shuffled, reproducibly from `seed`.
pub fn order(targets: &[Binary], seed: u64, index: usize) -> Vec<Binary> {
    let mut order = targets.to_vec();
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(index as u64));
    rng.shuffle(&mut order);
    order
}

/// The tool of a sweep: oha whenever the rate varies (an open loop needs it).
pub fn tool_for(varies: &[Vary], asked: Option<ToolKind>, preset: ToolKind) -> Result<ToolKind> {
    let rate_varies = varies.iter().any(|v| v.knob == Knob::Rate);
    match (asked, rate_varies) {
        (Some(tool), true) if !tool.holds_a_rate() => {
            bail!("--vary rate needs an open-loop tool; {tool} cannot hold a rate (use --tool oha)")
        }
        (Some(tool), _) => Ok(tool),
        (None, true) => Ok(ToolKind::Oha),
        (None, false) => Ok(preset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_parses_knobs_and_refuses_bad_ones_by_name() {
        let vary = parse_vary("delay-ms=0,10,20").unwrap();
        assert_eq!(vary.knob, Knob::DelayMs);
        assert_eq!(vary.values, [0, 10, 20].map(Value::Number));
        assert_eq!(
            parse_vary("backend=db,upstream").unwrap().values,
            [Value::Word("db".into()), Value::Word("upstream".into())]
        );
        let unknown = parse_vary("threads=1,2").unwrap_err();
        assert!(
            unknown.contains("threads") && unknown.contains("delay-ms"),
            "{unknown}"
        );
        let empty = parse_vary("rate=").unwrap_err();
        assert!(empty.contains("rate") && empty.contains("empty"), "{empty}");
        let nan = parse_vary("connections=10,many").unwrap_err();
        assert!(nan.contains("connections") && nan.contains("many"), "{nan}");
        assert!(parse_vary("connections=0").is_err());
        assert!(parse_vary("via=tcp").unwrap_err().contains("via"));
        assert!(parse_vary("delay-ms").unwrap_err().contains("KNOB=V1"));
        let twice = [parse_vary("rate=1").unwrap(), parse_vary("rate=2").unwrap()];
        assert!(check_distinct(&twice).unwrap_err().contains("rate"));
    }

    #[test]
    fn points_are_the_cartesian_product_and_orders_are_reproducible() {
        let varies = [
            parse_vary("delay-ms=0,10").unwrap(),
            parse_vary("connections=19,100,400").unwrap(),
        ];
        let points = points(&varies);
        assert_eq!(points.len(), 6);
        assert_eq!(points[0].label(), "delay-ms=0 connections=19");
        assert_eq!(points[5].label(), "delay-ms=10 connections=400");
        let mut settings = crate::model::preset::find("grinberg").unwrap().settings;
        points[5].apply(&mut settings);
        assert_eq!((settings.delay_ms, settings.connections), (10, 400));
        let targets = Binary::ALL.to_vec();
        assert_eq!(order(&targets, 7, 3), order(&targets, 7, 3));
        let mut sorted = order(&targets, 7, 3);
        sorted.sort_by_key(|b| b.name());
        let mut all = targets.clone();
        all.sort_by_key(|b| b.name());
        assert_eq!(sorted, all);
        let json = serde_json::to_string(&points[5]).unwrap();
        assert_eq!(json, r#"{"delay-ms":10,"connections":400}"#);
        assert_eq!(serde_json::from_str::<Point>(&json).unwrap(), points[5]);
    }

    #[test]
    fn rate_sweeps_need_an_open_loop_tool() {
        let rate = [parse_vary("rate=100,200").unwrap()];
        assert_eq!(tool_for(&rate, None, ToolKind::Wrk).unwrap(), ToolKind::Oha);
        assert!(tool_for(&rate, Some(ToolKind::Wrk), ToolKind::Wrk).is_err());
        let delay = [parse_vary("delay-ms=1").unwrap()];
        assert_eq!(
            tool_for(&delay, None, ToolKind::Wrk).unwrap(),
            ToolKind::Wrk
        );
    }
}
