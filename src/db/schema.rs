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
        certificate_issuer_key -> Nullable<Text>,
    }
}

diesel::joinable!(principals -> agencies (agency_id));
diesel::table! {
    agreement_versions (agreement_id, version) {
        agreement_id -> Text,
        version -> Integer,
        document -> Text,
        created_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    agreement_approvals (agreement_id, version, agency_id) {
        agreement_id -> Text,
        version -> Integer,
        agency_id -> Text,
        approved_by -> Text,
        approved_at -> BigInt,
    }
}

diesel::table! {
    agreement_events (agreement_id, seq) {
        agreement_id -> Text,
        seq -> Integer,
        kind -> Text,
        version -> Nullable<Integer>,
        reason -> Nullable<Text>,
        recorded_by -> Text,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    records (id) {
        id -> Text,
        subject_id -> Text,
        record_type -> Text,
        holder -> Text,
        occurred_at -> BigInt,
        payload -> Binary,
        submitted_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    alert_reviews (leaf_index) {
        leaf_index -> BigInt,
        outcome -> Text,
        note -> Binary,
        reviewed_by -> Text,
        reviewed_at -> BigInt,
    }
}

diesel::table! {
    audit_entries (leaf_index) {
        leaf_index -> BigInt,
        time_micros -> BigInt,
        request_id -> Text,
        principal_id -> Nullable<Text>,
        agency_id -> Nullable<Text>,
        subject_id -> Nullable<Text>,
        action -> Text,
        decision -> Text,
        purpose -> Nullable<Text>,
        break_glass -> Bool,
        leaf_data -> Binary,
    }
}

diesel::table! {
    audit_nodes (covers_to, level) {
        covers_to -> BigInt,
        level -> Integer,
        hash -> Binary,
    }
}

diesel::table! {
    audit_cosignatures (tree_size, witness) {
        tree_size -> BigInt,
        witness -> Text,
        signature_line -> Text,
        received_at -> BigInt,
    }
}

diesel::table! {
    record_type_catalogues (version) {
        version -> Integer,
        definition -> Text,
        sha256 -> Text,
        registered_at -> BigInt,
    }
}

diesel::table! {
    audit_checkpoints (tree_size) {
        tree_size -> BigInt,
        root_hash -> Binary,
        signed_note -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    subjects (id) {
        id -> Text,
        nhs_number_index -> Nullable<Text>,
        pnc_id_index -> Nullable<Text>,
        nhs_number -> Nullable<Binary>,
        pnc_id -> Nullable<Binary>,
        given_name -> Binary,
        family_name -> Binary,
        date_of_birth -> Binary,
        enrolled_on -> Text,
        enrolled_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    subject_discharges (subject_id) {
        subject_id -> Text,
        discharged_on -> Text,
        reason -> Binary,
        recorded_by -> Text,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    consents (subject_id, version) {
        subject_id -> Text,
        version -> Integer,
        kind -> Text,
        level -> Nullable<Text>,
        agencies -> Nullable<Text>,
        excluded_categories -> Text,
        evidence -> Binary,
        effective_on -> Text,
        expires_on -> Nullable<Text>,
        recorded_by -> Text,
        recorded_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    agencies,
    principals,
    audit_entries,
    audit_nodes,
    audit_checkpoints,
    audit_cosignatures,
    record_type_catalogues,
    subjects,
    subject_discharges,
    consents,
    agreement_versions,
    agreement_approvals,
    agreement_events,
    records,
    alert_reviews,
);
