//! Plain-text tables for the admin commands: columns padded to their widest cell.

use serde_json::Value;

/// A JSON value as a table cell: `-` for null, strings unquoted.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `header` and `rows` as aligned columns, one row a line (the last column unpadded).
pub(super) fn render(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = *w));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_nulls_show_as_dashes() {
        let out = render(
            &["A", "BB"],
            vec![
                vec!["long cell".into(), text(&Value::Null)],
                vec![text(&Value::from("x")), text(&Value::from(7))],
            ],
        );
        assert_eq!(out, "A          BB\nlong cell  -\nx          7\n");
    }
}
