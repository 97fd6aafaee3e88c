//! Values on hover: transparent shapes laid over a chart's bars, points and cells, each with an
//! SVG `<title>`, which a browser shows as a tooltip (no script needed). A chart collects them
//! in [`Hover`] while it draws, from the same data coordinates plotters maps to pixels, and
//! they are added to the file after plotters has written it.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;

/// The hover shapes of one chart, in pixels.
#[derive(Default)]
pub struct Hover {
    marks: Vec<(Shape, String)>,
}

enum Shape {
    Rect { x: i32, y: i32, w: i32, h: i32 },
    Dot { x: i32, y: i32 },
}

/// The radius of a point's hover area, larger than the drawn dot so that it is easy to find.
const DOT_RADIUS: i32 = 7;

impl Hover {
    /// The rectangle between two corners in data coordinates.
    pub fn rect<DB: DrawingBackend, X: Ranged, Y: Ranged>(
        &mut self,
        chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
        corners: [(X::ValueType, Y::ValueType); 2],
        text: impl Into<String>,
    ) {
        let [a, b] = corners.map(|c| chart.backend_coord(&c));
        let shape = Shape::Rect {
            x: a.0.min(b.0),
            y: a.1.min(b.1),
            w: (a.0 - b.0).abs().max(2),
            h: (a.1 - b.1).abs().max(2),
        };
        self.marks.push((shape, text.into()));
    }

    /// A point in data coordinates.
    pub fn dot<DB: DrawingBackend, X: Ranged, Y: Ranged>(
        &mut self,
        chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
        at: (X::ValueType, Y::ValueType),
        text: impl Into<String>,
    ) {
        let (x, y) = chart.backend_coord(&at);
        self.marks.push((Shape::Dot { x, y }, text.into()));
    }

    /// The shapes as an SVG group, each with its title.
    fn svg(&self) -> String {
        let mut out = String::from("<g class=\"hover\" fill=\"#000\" fill-opacity=\"0\">\n");
        for (shape, text) in &self.marks {
            let title = escape(text);
            let _ = match shape {
                Shape::Rect { x, y, w, h } => writeln!(
                    out,
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\"><title>{title}</title></rect>"
                ),
                Shape::Dot { x, y } => writeln!(
                    out,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"{DOT_RADIUS}\"><title>{title}</title></circle>"
                ),
            };
        }
        out + "</g>\n"
    }

    /// Adds the shapes to the chart plotters wrote at `path` (they go last, so on top).
    pub fn write_into(&self, path: &Path) -> Result<()> {
        let svg = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let end = svg
            .rfind("</svg>")
            .with_context(|| format!("{} is not an SVG file", path.display()))?;
        let with = format!("{}{}{}", &svg[..end], self.svg(), &svg[end..]);
        std::fs::write(path, with).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Text for SVG and HTML: `&`, `<`, `>` and quotes escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_escaped_and_shapes_go_before_the_end() {
        let dir = std::env::temp_dir().join(format!("hover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.svg");
        std::fs::write(&path, "<svg>\n<rect/>\n</svg>\n").unwrap();
        let mut hover = Hover::default();
        hover
            .marks
            .push((Shape::Dot { x: 3, y: 4 }, "a<b> & \"c\"".to_string()));
        hover.write_into(&path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<circle cx=\"3\" cy=\"4\" r=\"7\"><title>a&lt;b&gt; &amp; &quot;c&quot;</title></circle>"));
        assert!(svg.trim_end().ends_with("</g>\n</svg>"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
