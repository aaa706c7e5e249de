// @generated automatically by Diesel CLI.

diesel::table! {
    api_keys (id) {
        id -> Int8,
        token_hash -> Text,
        bot_id -> Int8,
        guild_id -> Nullable<Int8>,
        scope -> Text,
        label -> Text,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        bot_id -> Int8,
        guild_id -> Int8,
        key_id -> Int8,
        key_label -> Text,
        author -> Text,
        action -> Text,
        details -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    bonus_invites (id) {
        id -> Int8,
        bot_id -> Int8,
        guild_id -> Int8,
        inviter_id -> Int8,
        amount -> Int8,
        reason -> Text,
        author -> Text,
        key_id -> Int8,
        created_at -> Timestamptz,
        cleared -> Bool,
        cleared_by -> Nullable<Int8>,
    }
}

diesel::table! {
    bot_posts (decision_id) {
        decision_id -> Int8,
        batch_id -> Int8,
        bot_id -> Int8,
        guild_id -> Int8,
        channel_id -> Int8,
        message_id -> Nullable<Int8>,
        outcome -> Text,
        detail -> Nullable<Text>,
        at -> Timestamptz,
    }
}

diesel::table! {
    dashboard_sessions (token_hash) {
        token_hash -> Text,
        bot_id -> Int8,
        user_id -> Int8,
        username -> Text,
        guild_ids -> Jsonb,
        csrf_token -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    decisions (id) {
        id -> Int8,
        stream -> Text,
        bot_id -> Int8,
        guild_id -> Int8,
        member_id -> Int8,
        payload -> Bytea,
        decided_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    guild_settings (bot_id, guild_id) {
        bot_id -> Int8,
        guild_id -> Int8,
        fake_reasons -> Int4,
        young_account_days -> Int4,
        join_log_channel_id -> Nullable<Int8>,
        leave_log_channel_id -> Nullable<Int8>,
        templates -> Jsonb,
        invite_channel_id -> Nullable<Int8>,
    }
}

diesel::table! {
    guild_states (bot_id, guild_id) {
        bot_id -> Int8,
        guild_id -> Int8,
        state -> Jsonb,
        pending_joins -> Int4,
        missing_permissions -> Bool,
        last_snapshot_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    inviter_counts (bot_id, guild_id, inviter_id) {
        bot_id -> Int8,
        guild_id -> Int8,
        inviter_id -> Int8,
        joins -> Int8,
        fake -> Int8,
        leaves -> Int8,
        bonus -> Int8,
    }
}

diesel::table! {
    invites (bot_id, guild_id, code) {
        bot_id -> Int8,
        guild_id -> Int8,
        code -> Text,
        channel_id -> Nullable<Int8>,
        inviter_id -> Nullable<Int8>,
        uses -> Int8,
        max_uses -> Int8,
        max_age_secs -> Int4,
        temporary -> Bool,
        created_at -> Nullable<Timestamptz>,
        expires_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        vanished_at -> Nullable<Timestamptz>,
        vanished_reason -> Nullable<Text>,
    }
}

diesel::table! {
    join_evidence (join_id) {
        join_id -> Int8,
        decided_by -> Text,
        discord_source -> Text,
        discord_code -> Nullable<Text>,
        discord_inviter_id -> Nullable<Int8>,
        disagrees -> Bool,
        reported_at -> Timestamptz,
    }
}

diesel::table! {
    join_imports (id) {
        id -> Int8,
        import_id -> Int8,
        staged_at -> Timestamptz,
        member_id -> Int8,
        created_at -> Timestamptz,
        decided_at -> Timestamptz,
        source -> Text,
        invite_code -> Nullable<Text>,
        inviter_id -> Nullable<Int8>,
        candidates -> Text,
        unknown_reason -> Nullable<Text>,
        fake -> Int4,
        left_at -> Nullable<Timestamptz>,
        cleared -> Bool,
    }
}

diesel::table! {
    join_source_health (bot_id, guild_id) {
        bot_id -> Int8,
        guild_id -> Int8,
        reports -> Int8,
        credited -> Int8,
        confirmed -> Int8,
        disagreements -> Int8,
        refused_status -> Nullable<Int4>,
        refused_detail -> Nullable<Text>,
        refused_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    joins (id) {
        id -> Int8,
        bot_id -> Int8,
        guild_id -> Int8,
        member_id -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        source -> Text,
        invite_code -> Nullable<Text>,
        inviter_id -> Nullable<Int8>,
        candidates -> Array<Text>,
        unknown_reason -> Nullable<Text>,
        fake -> Int4,
        has_left -> Bool,
        left_at -> Nullable<Timestamptz>,
        cleared -> Bool,
        decided_at -> Timestamptz,
    }
}

diesel::table! {
    member_invites (bot_id, guild_id, code) {
        bot_id -> Int8,
        guild_id -> Int8,
        code -> Text,
        member_id -> Int8,
        channel_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    members (bot_id, guild_id, member_id) {
        bot_id -> Int8,
        guild_id -> Int8,
        member_id -> Int8,
        present -> Bool,
        joined_at -> Timestamptz,
        left_at -> Nullable<Timestamptz>,
        has_avatar -> Bool,
        rejoined -> Bool,
        join_count -> Int4,
    }
}

diesel::table! {
    partition_progress (stream, partition) {
        stream -> Text,
        partition -> Int4,
        last_sequence -> Int8,
        epoch -> Int8,
        updated_at -> Timestamptz,
        stream_created_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    reset_joins (reset_id, join_id) {
        reset_id -> Int8,
        join_id -> Int8,
    }
}

diesel::table! {
    resets (id) {
        id -> Int8,
        bot_id -> Int8,
        guild_id -> Int8,
        inviter_id -> Nullable<Int8>,
        reason -> Text,
        author -> Text,
        key_id -> Int8,
        created_at -> Timestamptz,
        joins_cleared -> Int8,
        bonus_cleared -> Int8,
        restored_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        webhook_id -> Int8,
        decision_id -> Int8,
        event_type -> Text,
        body -> Text,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Int8,
        bot_id -> Int8,
        guild_id -> Int8,
        url -> Text,
        events -> Array<Nullable<Text>>,
        secret -> Text,
        author -> Text,
        key_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workers (stream, worker_id) {
        stream -> Text,
        worker_id -> Text,
        last_seen -> Timestamptz,
    }
}

diesel::joinable!(bonus_invites -> resets (cleared_by));
diesel::joinable!(join_evidence -> joins (join_id));
diesel::joinable!(reset_joins -> joins (join_id));
diesel::joinable!(reset_joins -> resets (reset_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    audit_log,
    bonus_invites,
    bot_posts,
    dashboard_sessions,
    decisions,
    guild_settings,
    guild_states,
    inviter_counts,
    invites,
    join_evidence,
    join_imports,
    join_source_health,
    joins,
    member_invites,
    members,
    partition_progress,
    reset_joins,
    resets,
    webhook_deliveries,
    webhooks,
    workers,
);
