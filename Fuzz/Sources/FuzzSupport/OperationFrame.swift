/// One operation of an input cut into fixed frames (`FuzzSpecializedMaps`, `FuzzDictionary`):
/// 8 bytes, an opcode then 7 operand bytes that the operation reads as it likes (reads past
/// the frame give zeros). Fixed frames keep the operations of an input aligned whatever each
/// one reads, so that a mutation changes one operation only.
public struct OperationFrame {
    public let opcode: UInt8
    public var operands: FuzzInput

    public static let size = 8
    /// The most operations one input runs.
    public static let limit = 400

    /// The next operation of `input`, or nil at its end.
    public static func next(_ input: inout FuzzInput) -> OperationFrame? {
        guard !input.isExhausted else { return nil }
        let opcode = input.byte()
        return OperationFrame(opcode: opcode, operands: FuzzInput(input.bytes(size - 1)))
    }
}
