//! Column conversions for tables written by other tools: the few casts the readers need.
//!
//! The readers accept an `id` of any integer type, a `key` that is a string (or an integer), a
//! `label` of any integer type and image bytes as `Binary`, `LargeBinary` or `BinaryView`, each
//! possibly dictionary-encoded (as pandas' categoricals arrive). These functions cover exactly
//! that. They replace `arrow-cast`, which with the `arrow-ord`, `arrow-cmp` and `lexical-*`
//! crates it pulls was ≈ 150 s of a cold build's 1,434 s of CPU (`cargo build --timings`,
//! 2026-12-03) for these five call sites. A value that does not fit is an error naming its row,
//! never a silent null.

use arrow_array::builder::BinaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, BinaryArray, UInt64Array};
use arrow_buffer::NullBuffer;
use arrow_schema::{ArrowError, DataType};

/// A dictionary-encoded column as the flat column of its value type; any other column as it is.
fn flatten(col: &ArrayRef) -> Result<ArrayRef, String> {
    match col.as_any_dictionary_opt() {
        Some(dict) => {
            let keys: UInt64Array = dict
                .normalized_keys()
                .into_iter()
                .map(|k| k as u64)
                .collect();
            // `normalized_keys` maps a null key to 0: carry the dictionary's nulls over.
            let flat = arrow_select::take::take(dict.values().as_ref(), &keys, None)
                .map_err(|e| e.to_string())?;
            with_nulls(flat, dict.nulls()).map_err(|e| e.to_string())
        }
        None => Ok(col.clone()),
    }
}

/// `array` with the validity of `nulls` (a parent's: a struct's or a dictionary's, whose nulls
/// mask rows the child itself holds as valid); `array` as it is when `nulls` has none.
pub(crate) fn with_nulls(
    array: ArrayRef,
    nulls: Option<&NullBuffer>,
) -> Result<ArrayRef, ArrowError> {
    match nulls {
        Some(n) if n.null_count() > 0 => {
            let data = array
                .to_data()
                .into_builder()
                .nulls(Some(n.clone()))
                .build()?;
            Ok(arrow_array::make_array(data))
        }
        _ => Ok(array),
    }
}

/// Every value of an integer column, widened to `i128` (null stays `None`); `None` for a column
/// of another type.
fn integers(col: &dyn Array) -> Option<Vec<Option<i128>>> {
    macro_rules! widen {
        ($t:ty) => {
            Some(
                col.as_primitive::<$t>()
                    .iter()
                    .map(|v| v.map(i128::from))
                    .collect(),
            )
        };
    }
    match col.data_type() {
        DataType::Int8 => widen!(Int8Type),
        DataType::Int16 => widen!(Int16Type),
        DataType::Int32 => widen!(Int32Type),
        DataType::Int64 => widen!(Int64Type),
        DataType::UInt8 => widen!(UInt8Type),
        DataType::UInt16 => widen!(UInt16Type),
        DataType::UInt32 => widen!(UInt32Type),
        DataType::UInt64 => widen!(UInt64Type),
        _ => None,
    }
}

fn narrow<T: TryFrom<i128>>(
    values: Vec<Option<i128>>,
    what: &str,
) -> Result<Vec<Option<T>>, String> {
    values
        .into_iter()
        .enumerate()
        .map(|(row, v)| match v {
            None => Ok(None),
            Some(v) => T::try_from(v)
                .map(Some)
                .map_err(|_| format!("row {row}: value {v} is not {what}")),
        })
        .collect()
}

/// The values of an integer column with no nulls, as `u64`; a negative value is an error.
pub(crate) fn to_u64(col: &ArrayRef) -> Result<Vec<u64>, String> {
    let col = flatten(col)?;
    let values = integers(col.as_ref())
        .ok_or_else(|| format!("expected an integer type, found {}", col.data_type()))?;
    narrow::<u64>(values, "a non-negative 64-bit integer")?
        .into_iter()
        .enumerate()
        .map(|(row, v)| v.ok_or_else(|| format!("row {row}: null")))
        .collect()
}

/// The values of an integer column as `i64` (null stays `None`); a `UInt64` above `i64::MAX` is
/// an error.
pub(crate) fn to_i64(col: &ArrayRef) -> Result<Vec<Option<i64>>, String> {
    let col = flatten(col)?;
    let values = integers(col.as_ref())
        .ok_or_else(|| format!("expected an integer type, found {}", col.data_type()))?;
    narrow::<i64>(values, "a 64-bit signed integer")
}

/// The values of a string column (`Utf8`, `LargeUtf8`, `Utf8View`), or of an integer column
/// written in decimal; null stays `None`.
pub(crate) fn to_strings(col: &ArrayRef) -> Result<Vec<Option<String>>, String> {
    let col = flatten(col)?;
    let owned = |v: Option<&str>| v.map(str::to_string);
    Ok(match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().iter().map(owned).collect(),
        DataType::LargeUtf8 => col.as_string::<i64>().iter().map(owned).collect(),
        DataType::Utf8View => col.as_string_view().iter().map(owned).collect(),
        other => integers(col.as_ref())
            .ok_or_else(|| format!("expected a string or integer type, found {other}"))?
            .into_iter()
            .map(|v| v.map(|v| v.to_string()))
            .collect(),
    })
}

/// A `Binary`, `LargeBinary` or `BinaryView` column as `Binary` (nulls kept); more than 2 GiB
/// of bytes in one column chunk is an error (`Binary` has 32-bit offsets).
pub(crate) fn to_binary(col: &ArrayRef) -> Result<BinaryArray, String> {
    let col = flatten(col)?;
    fn rebuild<'a>(
        len: usize,
        values: impl Iterator<Item = Option<&'a [u8]>> + Clone,
    ) -> Result<BinaryArray, String> {
        let bytes: usize = values.clone().map(|v| v.map_or(0, <[u8]>::len)).sum();
        if bytes > i32::MAX as usize {
            return Err(format!(
                "{bytes} bytes in one batch do not fit a Binary column (at most {})",
                i32::MAX
            ));
        }
        let mut out = BinaryBuilder::with_capacity(len, bytes);
        for v in values {
            out.append_option(v);
        }
        Ok(out.finish())
    }
    match col.data_type() {
        DataType::Binary => Ok(col.as_binary::<i32>().clone()),
        DataType::LargeBinary => {
            let a = col.as_binary::<i64>();
            rebuild(a.len(), a.iter())
        }
        DataType::BinaryView => {
            let a = col.as_binary_view();
            rebuild(a.len(), a.iter())
        }
        other => Err(format!(
            "expected Binary, LargeBinary or BinaryView, found {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        BinaryViewArray, DictionaryArray, Int32Array, Int8Array, LargeBinaryArray,
        LargeStringArray, StringArray, StringViewArray, UInt64Array, UInt8Array,
    };
    use std::sync::Arc;

    fn arr(a: impl Array + 'static) -> ArrayRef {
        Arc::new(a)
    }

    #[test]
    fn integers_of_every_width_become_u64_and_negatives_are_refused() {
        assert_eq!(
            to_u64(&arr(UInt8Array::from(vec![0, 255]))).unwrap(),
            [0, 255]
        );
        assert_eq!(
            to_u64(&arr(UInt64Array::from(vec![u64::MAX]))).unwrap(),
            [u64::MAX]
        );
        assert_eq!(to_u64(&arr(Int8Array::from(vec![3, 7]))).unwrap(), [3, 7]);
        let err = to_u64(&arr(Int32Array::from(vec![1, -2]))).unwrap_err();
        assert!(err.contains("row 1") && err.contains("-2"), "{err}");
        let err = to_u64(&arr(Int32Array::from(vec![Some(1), None]))).unwrap_err();
        assert!(err.contains("row 1: null"), "{err}");
        let err = to_u64(&arr(StringArray::from(vec!["1"]))).unwrap_err();
        assert!(err.contains("found Utf8"), "{err}");
    }

    #[test]
    fn labels_keep_nulls_and_refuse_what_i64_cannot_hold() {
        let got = to_i64(&arr(Int32Array::from(vec![Some(-4), None, Some(9)]))).unwrap();
        assert_eq!(got, [Some(-4), None, Some(9)]);
        let err = to_i64(&arr(UInt64Array::from(vec![0, u64::MAX]))).unwrap_err();
        assert!(err.contains("row 1"), "{err}");
    }

    #[test]
    fn keys_from_every_string_layout_and_from_integers() {
        let want = [Some("a".to_string()), None, Some("ç".to_string())];
        let v = vec![Some("a"), None, Some("ç")];
        assert_eq!(
            to_strings(&arr(StringArray::from(v.clone()))).unwrap(),
            want
        );
        assert_eq!(
            to_strings(&arr(LargeStringArray::from(v.clone()))).unwrap(),
            want
        );
        assert_eq!(to_strings(&arr(StringViewArray::from(v))).unwrap(), want);
        assert_eq!(
            to_strings(&arr(Int32Array::from(vec![-12, 40]))).unwrap(),
            [Some("-12".to_string()), Some("40".to_string())]
        );
    }

    #[test]
    fn dictionary_columns_are_flattened_with_their_nulls() {
        let dict: DictionaryArray<Int32Type> = vec![Some("cat"), Some("dog"), None, Some("cat")]
            .into_iter()
            .collect();
        assert_eq!(
            to_strings(&arr(dict)).unwrap(),
            [
                Some("cat".to_string()),
                Some("dog".to_string()),
                None,
                Some("cat".to_string())
            ]
        );
        let keys = Int8Array::from(vec![1, 0, 1]);
        let values = arr(Int32Array::from(vec![10, 20]));
        let dict = DictionaryArray::new(keys, values);
        assert_eq!(to_u64(&arr(dict)).unwrap(), [20, 10, 20]);
    }

    #[test]
    fn binary_layouts_become_binary() {
        let v: Vec<Option<&[u8]>> = vec![Some(b"ab"), None, Some(b"")];
        let want = BinaryArray::from(v.clone());
        assert_eq!(to_binary(&arr(BinaryArray::from(v.clone()))).unwrap(), want);
        assert_eq!(
            to_binary(&arr(LargeBinaryArray::from(v.clone()))).unwrap(),
            want
        );
        assert_eq!(to_binary(&arr(BinaryViewArray::from(v))).unwrap(), want);
        let err = to_binary(&arr(Int32Array::from(vec![1]))).unwrap_err();
        assert!(err.contains("found Int32"), "{err}");
    }
}
