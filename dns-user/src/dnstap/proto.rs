//! dnstap's protobuf messages (dnstap.proto, <https://github.com/dnstap/dnstap.pb>), the fields
//! an authoritative server writes, with their numbers and types as the schema gives them.

/// `Dnstap`: the envelope of every frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dnstap {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub version: Option<Vec<u8>>,
    #[prost(message, optional, tag = "14")]
    pub message: Option<Message>,
    /// Always [`DNSTAP_TYPE_MESSAGE`].
    #[prost(int32, required, tag = "15")]
    pub r#type: i32,
}

/// `Dnstap.Type.MESSAGE`.
pub const DNSTAP_TYPE_MESSAGE: i32 = 1;

/// `Message`: one DNS message seen by the server.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    #[prost(int32, required, tag = "1")]
    pub r#type: i32,
    #[prost(int32, optional, tag = "2")]
    pub socket_family: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub socket_protocol: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    pub query_address: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub response_address: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "6")]
    pub query_port: Option<u32>,
    #[prost(uint32, optional, tag = "7")]
    pub response_port: Option<u32>,
    #[prost(uint64, optional, tag = "8")]
    pub query_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "9")]
    pub query_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "10")]
    pub query_message: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "12")]
    pub response_time_sec: Option<u64>,
    #[prost(fixed32, optional, tag = "13")]
    pub response_time_nsec: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "14")]
    pub response_message: Option<Vec<u8>>,
}

/// `Message.Type.AUTH_QUERY`.
pub const AUTH_QUERY: i32 = 1;
/// `Message.Type.AUTH_RESPONSE`.
pub const AUTH_RESPONSE: i32 = 2;
/// `SocketFamily.INET`, `INET6`.
pub const INET: i32 = 1;
pub const INET6: i32 = 2;
/// `SocketProtocol.UDP`, `TCP`.
pub const UDP: i32 = 1;
pub const TCP: i32 = 2;
