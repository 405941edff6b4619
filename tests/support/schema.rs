//! A small validator for the subset of JSON Schema that `docs/summary.schema.json` uses, and
//! the check of a summary file against it.

/// A small validator for the subset of JSON Schema that docs/summary.schema.json uses.
pub fn conforms(
    v: &serde_json::Value,
    s: &serde_json::Value,
    root: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return conforms(v, &root["$defs"][name], root, at);
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(xs) => xs.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let k = req.as_str().unwrap_or_default();
            if !obj.contains_key(k) {
                return Err(format!("{at}: missing required `{k}`"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => conforms(val, ps, root, &format!("{at}.{k}"))?,
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{at}: unexpected key `{k}`")),
                    Some(ap @ Value::Object(_)) => conforms(val, ap, root, &format!("{at}.{k}"))?,
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, it) in arr.iter().enumerate() {
            conforms(it, items, root, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Checks a `--summary-json` document against `docs/summary.schema.json`.
pub fn assert_summary_conforms(v: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(super::root().join("docs/summary.schema.json"))
            .expect("read docs/summary.schema.json"),
    )
    .expect("schema json");
    conforms(v, &schema, &schema, "$").unwrap_or_else(|e| panic!("{e}\n{v:#}"));
}
