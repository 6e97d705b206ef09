//! Diesel table definitions, matching `migrations/`.

diesel::table! {
    sync_runs (id) {
        id -> Int8,
        source -> Text,
        trigger -> Text,
        requested_by -> Nullable<Text>,
        dry_run -> Bool,
        status -> Text,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        mapping_file -> Text,
        mapping_hash -> Text,
        counts -> Jsonb,
        issues -> Jsonb,
        message -> Nullable<Text>,
        as_of -> Nullable<Date>,
    }
}

diesel::table! {
    sync_run_payloads (run_id, seq) {
        run_id -> Int8,
        seq -> Int4,
        url -> Text,
        http_status -> Int4,
        bytes -> Int4,
        hash -> Text,
        not_modified -> Bool,
        fetched_at -> Timestamptz,
    }
}

diesel::table! {
    sync_run_heartbeats (run_id) {
        run_id -> Int8,
        beat_at -> Timestamptz,
    }
}

diesel::table! {
    raw_payloads (hash) {
        hash -> Text,
        body -> Bytea,
        content_type -> Nullable<Text>,
        bytes -> Int4,
        first_run_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    http_cache (url) {
        url -> Text,
        etag -> Nullable<Text>,
        last_modified -> Nullable<Text>,
        payload_hash -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    procedures (source, code) {
        source -> Text,
        code -> Text,
        name -> Text,
        search_key -> Text,
        local_code -> Text,
        content_hash -> Text,
        raw_hash -> Nullable<Text>,
        version -> Int4,
        status -> Text,
        missing_runs -> Int4,
        first_run_id -> Int8,
        last_changed_run_id -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    procedure_versions (source, code, version) {
        source -> Text,
        code -> Text,
        version -> Int4,
        run_id -> Int8,
        content_hash -> Text,
        record -> Json,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    procedure_aliases (source, local_code, code, valid_from) {
        source -> Text,
        local_code -> Text,
        code -> Text,
        valid_from -> Timestamptz,
        valid_to -> Nullable<Timestamptz>,
        run_id -> Int8,
    }
}

diesel::table! {
    procedure_changes (id) {
        id -> Int8,
        run_id -> Int8,
        source -> Text,
        code -> Text,
        name -> Text,
        kind -> Text,
        field -> Nullable<Text>,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stats_rows (source, code) {
        source -> Text,
        code -> Text,
        unit_code -> Text,
        period -> Text,
        procedure_code -> Text,
        sector_code -> Text,
        name -> Text,
        content_hash -> Text,
        raw_hash -> Nullable<Text>,
        version -> Int4,
        status -> Text,
        missing_runs -> Int4,
        first_run_id -> Int8,
        last_changed_run_id -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    stats_versions (source, code, version) {
        source -> Text,
        code -> Text,
        version -> Int4,
        run_id -> Int8,
        content_hash -> Text,
        record -> Json,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stats_changes (id) {
        id -> Int8,
        run_id -> Int8,
        source -> Text,
        code -> Text,
        name -> Text,
        kind -> Text,
        field -> Nullable<Text>,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stats_unit_names (unit_code, name) {
        unit_code -> Text,
        name -> Text,
        first_run_id -> Int8,
        last_run_id -> Int8,
        first_seen_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::joinable!(procedure_changes -> sync_runs (run_id));
diesel::joinable!(sync_run_payloads -> sync_runs (run_id));
diesel::joinable!(sync_run_heartbeats -> sync_runs (run_id));
diesel::allow_tables_to_appear_in_same_query!(
    sync_runs,
    sync_run_payloads,
    sync_run_heartbeats,
    raw_payloads,
    http_cache,
    procedures,
    procedure_versions,
    procedure_aliases,
    procedure_changes,
    stats_rows,
    stats_versions,
    stats_changes,
    stats_unit_names,
);

diesel::table! {
    site_change_entries (site, code, run_id, kind) {
        site -> Text,
        code -> Text,
        run_id -> Int8,
        kind -> Text,
        name -> Text,
        at -> Timestamptz,
        fields -> Jsonb,
        recorded_at -> Timestamptz,
        decision -> Nullable<Text>,
    }
}

diesel::table! {
    site_publications (site) {
        site -> Text,
        last_change_id -> Int8,
        published_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        name -> Text,
        password_hash -> Text,
        operator -> Bool,
        sites -> Array<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        secret_hash -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Bytea,
        user_id -> Int8,
        csrf_token -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        detail -> Nullable<Text>,
        address -> Nullable<Text>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        key -> Text,
        kind -> Text,
        subject -> Text,
        body -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    notification_deliveries (notification_id, channel) {
        notification_id -> Int8,
        channel -> Text,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(notification_deliveries -> notifications (notification_id));
diesel::allow_tables_to_appear_in_same_query!(users, api_tokens, sessions);
diesel::allow_tables_to_appear_in_same_query!(notifications, notification_deliveries);

diesel::table! {
    detail_pages (source, code, part) {
        source -> Text,
        code -> Text,
        part -> Int2,
        url -> Text,
        etag -> Nullable<Text>,
        last_modified -> Nullable<Text>,
        fetched_at -> Nullable<Timestamptz>,
        detail -> Nullable<Text>,
        merged_hash -> Nullable<Bytea>,
        list_hash -> Nullable<Bytea>,
        error -> Nullable<Text>,
        failures -> Int4,
        attempted_at -> Timestamptz,
    }
}

diesel::table! {
    decisions (source, id) {
        source -> Text,
        id -> Text,
        number -> Text,
        decided_on -> Nullable<Date>,
        issuer -> Text,
        title -> Text,
        content_hash -> Text,
        raw_hash -> Nullable<Text>,
        version -> Int4,
        status -> Text,
        missing_runs -> Int4,
        first_run_id -> Int8,
        last_changed_run_id -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    decision_versions (source, id, version) {
        source -> Text,
        id -> Text,
        version -> Int4,
        run_id -> Int8,
        content_hash -> Text,
        record -> Json,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    decision_changes (change_id) {
        change_id -> Int8,
        source -> Text,
        id -> Text,
        run_id -> Int8,
        kind -> Text,
        field -> Nullable<Text>,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    decision_procedures (source, decision_id, list, position) {
        source -> Text,
        decision_id -> Text,
        list -> Text,
        position -> Int4,
        procedure_id -> Text,
        code -> Text,
        name -> Text,
        name_key -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(decisions, decision_procedures);
