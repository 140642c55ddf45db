//! A minimal ONNX protobuf writer: just the messages and fields an exported encoder uses
//! (field numbers from `onnx/onnx.proto`, ONNX 1.14+).
//!
//! Protobuf wire format: every field is a key `(field_number << 3) | wire_type` as a varint,
//! then a varint (type 0) or a varint length and the bytes
//! (type 2: strings, bytes and nested messages). Repeated fields are written unpacked, one key
//! per element, which every protobuf parser accepts for both proto2 and proto3.

/// `TensorProto.DataType.FLOAT`.
pub(crate) const FLOAT: i64 = 1;

/// A message being written.
#[derive(Debug, Default, Clone)]
pub(crate) struct Message(Vec<u8>);

impl Message {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// An `int64` / `int32` / enum field (negative values as 10-byte two's complement).
    pub(crate) fn int(mut self, field: u32, v: i64) -> Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }

    /// A `bytes` field.
    pub(crate) fn bytes(mut self, field: u32, v: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    /// A `string` field.
    pub(crate) fn string(self, field: u32, v: &str) -> Self {
        self.bytes(field, v.as_bytes())
    }

    /// A nested message field.
    pub(crate) fn message(self, field: u32, m: Message) -> Self {
        self.bytes(field, &m.0)
    }

    /// The encoded bytes.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// `TensorShapeProto.Dimension`: a fixed size or a symbolic name.
#[derive(Debug, Clone)]
pub(crate) enum Dim {
    /// `dim_value`.
    Fixed(usize),
    /// `dim_param`.
    Named(&'static str),
}

/// `ValueInfoProto` of a float tensor with `dims`.
pub(crate) fn value_info(name: &str, dims: &[Dim]) -> Message {
    let shape = dims.iter().fold(Message::new(), |shape, d| {
        let dim = match d {
            Dim::Fixed(v) => Message::new().int(1, *v as i64),
            Dim::Named(p) => Message::new().string(2, p),
        };
        shape.message(1, dim)
    });
    let tensor = Message::new().int(1, FLOAT).message(2, shape);
    Message::new()
        .string(1, name)
        .message(2, Message::new().message(1, tensor))
}

/// `TensorProto` of f32 `values` with `dims` (as `raw_data`, little-endian).
pub(crate) fn tensor(name: &str, dims: &[usize], values: &[f32]) -> Message {
    let mut m = dims.iter().fold(Message::new(), |m, &d| m.int(1, d as i64));
    m = m.int(2, FLOAT).string(8, name);
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.bytes(9, &raw)
}

/// `AttributeProto` of type INTS.
pub(crate) fn ints(name: &str, values: &[i64]) -> Message {
    let m = Message::new().string(1, name).int(20, 7);
    values.iter().fold(m, |m, &v| m.int(8, v))
}

/// `AttributeProto` of type INT.
pub(crate) fn int(name: &str, value: i64) -> Message {
    Message::new().string(1, name).int(3, value).int(20, 2)
}

/// `NodeProto`.
pub(crate) fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attributes: Vec<Message>,
) -> Message {
    let mut m = Message::new();
    for i in inputs {
        m = m.string(1, i);
    }
    for o in outputs {
        m = m.string(2, o);
    }
    m = m.string(3, name).string(4, op);
    attributes.into_iter().fold(m, |m, a| m.message(5, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_follow_the_wire_format() {
        // Field 1, varint 150: the protobuf documentation's example (08 96 01).
        assert_eq!(Message::new().int(1, 150).into_bytes(), [0x08, 0x96, 0x01]);
        // Field 2, string "ab": key 0x12, length 2.
        assert_eq!(
            Message::new().string(2, "ab").into_bytes(),
            [0x12, 2, b'a', b'b']
        );
        // Negative int64: ten bytes of two's complement.
        assert_eq!(Message::new().int(1, -1).into_bytes().len(), 11);
    }
}
