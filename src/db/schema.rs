//! The diesel schema shared by both backends. Kept to types both share: text ids, integer
//! versions and integer microsecond timestamps.

diesel::table! {
    agencies (id) {
        id -> Text,
        kind -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    principals (id, version) {
        id -> Text,
        version -> Integer,
        agency_id -> Text,
        certificate_subject -> Text,
        certificate_issuer -> Text,
        roles -> Text,
        status -> Text,
        changed_at -> BigInt,
    }
}

diesel::joinable!(principals -> agencies (agency_id));
diesel::allow_tables_to_appear_in_same_query!(agencies, principals);
