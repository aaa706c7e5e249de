# Every string invitrack's slash commands answer with, in English (the catalogue's fallback).
# Arguments named `user`, `member`, `inviter` are Discord mentions (`<@id>`), `channel` a channel
# mention, `when` a Discord timestamp; numbers are numbers, so plurals follow the language.

## Shared

guild-only = invitrack's commands work in a server.
unknown-command = This command is not available any more.
unavailable = invitrack cannot read its data right now; try again in a moment.
need-manage-server = You need the Manage Server permission to do this.
not-your-button = Only the member who asked can answer this.
button-previous = Previous
button-next = Next
button-confirm-reset = Reset
button-cancel = Cancel
everyone = everyone

## /invites

invites = { $user } has **{ $total }** { $total ->
        [one] invite
       *[other] invites
    } ({ $real } real, { $fake } fake, { $left } left, { $bonus } bonus).

## /leaderboard

range-all = all time
range-7d = last 7 days
range-30d = last 30 days
leaderboard-title = **Leaderboard** ({ $range }), page { $page } of { $pages }
leaderboard-line = { $rank }. { $inviter }: **{ $real }** real ({ $total } total, { $fake } fake, { $left } left, { $bonus } bonus)
leaderboard-empty = Nobody has brought a member yet ({ $range }). Invites with the bot present are counted from now on.
leaderboard-no-page = The leaderboard ({ $range }) has no page { $page }.

## /inviter

inviter-none = invitrack has no join of { $member }: they joined before the bot was tracking, or their join is still being decided.
inviter-invite = { $member } joined { $when } with invite { $code } from { $inviter }.
inviter-vanity = { $member } joined { $when } through the vanity URL { $code }.
inviter-ambiguous-one-owner = { $member } joined { $when } with one of { $codes }, all from { $inviter }, who is credited.
inviter-ambiguous = { $member } joined { $when } with one of { $codes }; they belong to different people, so nobody is credited.
inviter-unknown = { $member } joined { $when }; invitrack cannot tell how: { $reason }.
inviter-nobody = nobody
inviter-unknown-code = an unknown code
inviter-fake = The join counts as fake.
inviter-left = They have left since.
reason-untracked = no invite's use count went up for it (Server Discovery, an app adding the member, or a one-use invite created and used up between two reads)
reason-missing-permissions = the bot lacks the Manage Server permission it needs to read the invites
reason-no-snapshot = there was no reading of the invites to compare with (the member joined before the first one, or reading them kept failing)
reason-joined-while-offline = the member joined while the bot was offline; found afterwards, but the invites that moved meanwhile do not say which was theirs
reason-none = no reason was recorded

## /invitecodes

invitecodes-none = invitrack knows no invite code of { $user }.
invitecodes-title = **Invite codes of { $user }**
invitecodes-line = `{ $code }`: { $uses } { $uses ->
        [one] use
       *[other] uses
    }{ $max ->
        [0] {""}
       *[other] { " " }of { $max }
    }, { $expiry }; { $credited } credited ({ $fake } fake, { $left } left)
invitecodes-expires = expires { $when }
invitecodes-never-expires = never expires
invitecodes-gone = no longer exists
invitecodes-unseen = not seen by the bot
invitecodes-more = …and { $more } more.

## /bonus

bonus-added = Gave { $user } **{ $amount }** bonus { $amount ->
        [one] invite
       *[other] invites
    }. { $summary }
bonus-removed = Took **{ $amount }** bonus { $amount ->
        [one] invite
       *[other] invites
    } from { $user }. { $summary }

## /resetinvites and /restoreinvites

reset-ask-user = Reset the invite counts of { $user }? Their joins and bonus stop counting until /restoreinvites brings them back.
reset-ask-everyone = Reset the invite counts of everyone in this server? All joins and bonus stop counting until /restoreinvites brings them back.
reset-done = Reset: { $joins } { $joins ->
        [one] join
       *[other] joins
    } and { $bonus } bonus { $bonus ->
        [one] entry
       *[other] entries
    } of { $who } no longer count. /restoreinvites undoes it.
reset-cancelled = Nothing was reset.
restore-done = Restored the reset of { $who } made { $when }: { $joins } { $joins ->
        [one] join
       *[other] joins
    } and { $bonus } bonus { $bonus ->
        [one] entry
       *[other] entries
    } count again.
restore-none = There is no reset to undo.

## /config

config-title = **invitrack settings**
config-join-channel = Join messages: { $channel }
config-leave-channel = Leave messages: { $channel }
config-off = off
config-fake = Fake joins: { $rules }
config-fake-none = no rule
config-fake-young = accounts younger than { $days } { $days ->
        [one] day
       *[other] days
    }
config-fake-self = members who used their own invite
config-fake-no-avatar = accounts without an avatar
config-fake-already-joined = members who had joined before
config-join-channel-set = Join messages now go to { $channel }.
config-join-channel-off = Join messages are off.
config-leave-channel-set = Leave messages now go to { $channel }.
config-leave-channel-off = Leave messages are off.
config-fake-set = Joins decided from now on count as fake for: { $rules }.
config-invite-channel = Personal invites (/invite link): { $channel }
config-invite-channel-set = /invite link now creates members' invites in { $channel }.
config-invite-channel-off = /invite link is off.

## /config template: the form and what its submit says

template-title = Wording of { $message }
template-preview-now = **Now** (on sample data):
template-label-content = Message text
template-describe-content = Plain text; leave empty for an embed. Placeholders like {"{"}member.mention{"}"}.
template-label-title = Embed title
template-label-description = Embed description
template-label-footer = Embed footer
template-saved = Saved. { $message } will look like this (on sample data):
template-reset = { $message } is back to the default wording.
template-text-or-embed = Nothing saved: a message is either text or an embed. Empty the message text, or the embed's parts.
template-invalid = Nothing saved: { $problem }
template-too-slow = The settings took too long to read; run the command again.
template-message-invite = the join message (by an invite)
template-message-vanity = the join message (by the vanity URL)
template-message-ambiguous_inviter = the join message (one inviter, several codes)
template-message-ambiguous = the join message (ambiguous)
template-message-unknown = the join message (unknown)
template-message-fake = the join message (fake)
template-message-leave = the leave message

## /invite link

invite-link = Your personal invite: https://discord.gg/{ $code }
    Everyone who joins through it counts for you.
invite-link-off = Personal invites are off in this server. Someone with Manage Server can turn them on with /config invite-channel.
invite-link-forbidden = The bot may not create invites in { $channel }: give its role Create Invite there.
invite-link-failed = Discord did not create the invite; try again later.

## /tracking

tracking-title = **Invite tracking in this server**
tracking-not-seen = invitrack has not read this server's invites yet. If it stays so, the bot may be missing from the server or ingest may not run.
tracking-ok = The bot can read the invites.
tracking-missing-permissions = The bot cannot read the invites: give its role the Manage Server permission (Discord requires it to list invites). Until then joins stay unknown.
tracking-last-read = Invites last read { $when }.
tracking-never-read = The invites were never read.
tracking-pending = { $pending } { $pending ->
        [one] join is
       *[other] joins are
    } waiting for evidence.
tracking-week = Last 7 days: { $invite } by invite, { $vanity } by the vanity URL, { $ambiguous } ambiguous, { $unknown } unknown.
tracking-unknown-reason = { $count } unknown because { $reason }.
