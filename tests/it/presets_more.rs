//! The presets added after the first 27, each against a vector computed or checked with the
//! provider's official SDK at development time (the `source` of each entry names the package,
//! version and file), plus the rejections every preset must make: a changed body byte, a
//! changed signature character, another secret, and a timestamp outside its window.

use hookwall::verify::{SignedTimestamp, Verdict};

use super::presets::{assert_valid, route, tampered, verify};

/// One frozen delivery.
struct Vector {
    provider: &'static str,
    /// Where the vector comes from.
    source: &'static str,
    secret: &'static str,
    /// A valid secret of the same form that did not sign it.
    other_secret: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// The header whose signature [`altered`] changes.
    signature_header: &'static str,
    body: &'static [u8],
    /// What the verifier vouches for.
    timestamp: SignedTimestamp,
    /// The SDK's (past, future) tolerance in seconds, as the preset must default to.
    window: Option<(u64, u64)>,
}

const VECTORS: &[Vector] = &[
    Vector {
        provider: "clerk",
        source: "signed with svix 1.99.1 Webhook.sign, accepted by @clerk/backend 3.25.0 verifyWebhook (dist/webhooks.js)",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "whsec_dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("svix-id", "msg_2TjH5i0mBQZpyH0CMOqyHnCDEOM"), ("svix-timestamp", "1700000000"), ("svix-signature", "v1,5h3DDXCJPUddXU3vqx5g8DMqWKWD9FfLQmgk6J60Umw=")],
        signature_header: "svix-signature",
        body: br#"{"data":{"id":"user_29w83sxmDNGwOuEthce5gg56FcC"},"object":"event","type":"user.created"}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "resend",
        source: "signed with svix 1.99.1 Webhook.sign, accepted by resend 6.38.0 webhooks.verify (dist/index.mjs)",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "whsec_dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("svix-id", "msg_2c8Yp9Fk1o8rJ5Qd3uGf6oM7nWz"), ("svix-timestamp", "1700000000"), ("svix-signature", "v1,Pm+MHTwXKFrEAQvQJDodxsLMmqjJuWUQrLrrorxYK+U=")],
        signature_header: "svix-signature",
        body: br#"{"type":"email.delivered","created_at":"2023-11-14T22:13:20.000Z","data":{"email_id":"4ef9a417-02e9-4d39-ad75-9611e0fcc33c"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "openai",
        source: "signed with standardwebhooks 1.1.1 Webhook.sign, accepted by openai 6.49.0 webhooks.verifySignature (resources/webhooks/webhooks.js)",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "whsec_dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("webhook-id", "wh_685342e6c53c8190a1be43f081506c52"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,LzPzjEcOpGu2pTUxj5jM2Q6Wg+ic7U0xi6pcgALXB7Y=")],
        signature_header: "webhook-signature",
        body: br#"{"object":"event","id":"evt_685343a1381c819085d44c354e1b330e","type":"response.completed","created_at":1700000000,"data":{"id":"resp_abc"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "replicate",
        source: "signed with standardwebhooks 1.1.1 Webhook.sign, accepted by replicate 1.4.0 validateWebhook (lib/util.js)",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "whsec_dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,3O/IF1dIHdZOJRX3aldrp1AhIhXXmg+uRqYyfFr7/Ck=")],
        signature_header: "webhook-signature",
        body: br#"{"id":"ufawqhfynnddngldkgtslldrkq","status":"succeeded","output":["https://example.com/out.png"]}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "liveblocks",
        source: "signed with standardwebhooks 1.1.1 Webhook.sign, accepted by @liveblocks/node 3.24.2 WebhookHandler.verifyRequest",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "whsec_dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("webhook-id", "msg_2KvOZM7sY2I4UNSx3wz5Ot4VvsV"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,Ge3u2wp+krYvjfLLCajBAumUQo2NPmTQB0/j1NDjv6g=")],
        signature_header: "webhook-signature",
        body: br#"{"type":"roomCreated","data":{"projectId":"605a50b01a36d5ea7a2e9104","roomId":"my-room","createdAt":"2023-11-14T22:13:20.000Z"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "polar",
        source: "signed with standardwebhooks 1.1.1 over base64(secret) as @polar-sh/sdk 0.49.0 validateEvent (dist/commonjs/webhooks.js) keys it; validateEvent passed the signature (and refused another secret)",
        secret: "polar_whs_test_2kG8vC9pLxQ4mN7rT1sW5yZ3",
        other_secret: "polar_whs_another_secret",
        headers: &[("webhook-id", "msg_polar_1"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,/OPBu/tcMA9mJTRnGtnnVFMTV4CmGWQgcpJFFlyMrJw=")],
        signature_header: "webhook-signature",
        body: br#"{"type":"order.created","timestamp":"2023-11-14T22:13:20Z","data":{"id":"ord_1"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "coinbase-commerce",
        source: "coinbase-commerce-node 1.0.4 Webhook.computeSignature / verifySigHeader (lib/Webhook.js)",
        secret: "cc_shared_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-cc-webhook-signature", "c9208f9e29bcf025574b7d325c7053d09cd7d1a9afa56b47132f571889441fd0")],
        signature_header: "x-cc-webhook-signature",
        body: br#"{"id":1,"scheduled_for":"2023-11-14T22:13:20Z","event":{"id":"24934862-d980-46cb-9402-43c81b0cdba6","type":"charge:created","api_version":"2018-03-22","data":{"code":"66BEOV2A"}}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "razorpay",
        source: "HMAC-SHA256 hex, accepted by razorpay 2.9.8 validateWebhookSignature (dist/utils/razorpay-utils.js)",
        secret: "rzp_webhook_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-razorpay-signature", "877cbd2aeb492a35cd9cee6a831807137a5f753df5dce4aa8cc8f25fea976e37")],
        signature_header: "x-razorpay-signature",
        body: br#"{"entity":"event","account_id":"acc_BFQ7uQEaa7j2z7","event":"payment.captured","contains":["payment"],"created_at":1700000000}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "gocardless",
        source: "HMAC-SHA256 hex, accepted by gocardless-nodejs 10.1.2 webhooks.verifySignature (cjs/webhooks.js)",
        secret: "gc_webhook_endpoint_secret_test",
        other_secret: "not-the-secret",
        headers: &[("webhook-signature", "b0cfac8edf32dfd051ffd982afb145f98bea192507f20acf67b6b6758b29f56f")],
        signature_header: "webhook-signature",
        body: br#"{"events":[{"id":"EV123","created_at":"2023-11-14T22:13:20.000Z","action":"confirmed","resource_type":"payments","links":{"payment":"PM123"}}],"meta":{"webhook_id":"WB123"}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "onfido",
        source: "HMAC-SHA256 hex, accepted by @onfido/api 6.2.0 WebhookEventVerifier.readPayload (dist/webhook-event-verifier.js)",
        secret: "onfido_webhook_token_test",
        other_secret: "not-the-secret",
        headers: &[("x-sha2-signature", "a16d0f393d94e486354e00ce50ac041e137c5b6a2afe7276e1cb9bf847ea4836")],
        signature_header: "x-sha2-signature",
        body: br#"{"payload":{"resource_type":"check","action":"check.completed","object":{"id":"8546921-123123-123123","status":"complete"}}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "line",
        source: "HMAC-SHA256 base64, accepted by @line/bot-sdk 11.0.0 validateSignature (dist/validate-signature.js)",
        secret: "line_channel_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-line-signature", "FGcK+w6p0NR/QV3ZspG7hzi2THqPS20E1N2ktV2BZRU=")],
        signature_header: "x-line-signature",
        body: br#"{"destination":"U8e742f61d673b39c7fff3cecb7536ef0","events":[{"type":"message","webhookEventId":"01FZ74A0TDDPYRVKNK77XKC3ZR","timestamp":1700000000000}]}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "pusher",
        source: "pusher 5.3.4 Token.sign, accepted by WebHook.isValid (lib/token.js, lib/webhook.js)",
        secret: "pusher_app_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-pusher-signature", "dca4a8e4ffadb2721806382193aacc0a20a27767d0f07b12cd08d6e1afcc9a4a")],
        signature_header: "x-pusher-signature",
        body: br#"{"time_ms":1700000000000,"events":[{"name":"channel_occupied","channel":"test_channel"}]}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "workos",
        source: "@workos-inc/node 8.13.0 webhooks.computeSignature, accepted by webhooks.constructEvent (lib/factory-*.cjs)",
        secret: "workos_webhook_secret_test",
        other_secret: "not-the-secret",
        headers: &[("workos-signature", "t=1700000000000, v1=6c23edc45755cedefe72fb877993bdad5fadf074cf2920223bd6b39bf6fa9391")],
        signature_header: "workos-signature",
        body: br#"{"id":"event_01HBGQ0MRCB2Y6HB7DYB6AF83K","event":"user.created","data":{"id":"user_01E4ZCR3C56J083X43JQXF3JK5"},"created_at":"2023-11-14T22:13:20.000Z"}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((180, 300)),
    },
    Vector {
        provider: "elevenlabs",
        source: "HMAC-SHA256 over t.body, accepted by @elevenlabs/elevenlabs-js 2.73.0 webhooks.constructEvent (wrapper/webhooks.js)",
        secret: "wsec_elevenlabs_test",
        other_secret: "not-the-secret",
        headers: &[("ElevenLabs-Signature", "t=1700000000,v0=bbcf6b7c0840513ebdfa55da6f818eaa0b9739c55eea31e1875122a0510027ab")],
        signature_header: "ElevenLabs-Signature",
        body: br#"{"type":"post_call_transcription","event_timestamp":1700000000,"data":{"agent_id":"abc","conversation_id":"conv_1"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((1800, 300)),
    },
    Vector {
        provider: "sanity",
        source: "@sanity/webhook 4.0.4 encodeSignatureHeader, accepted by isValidSignature (dist/index.js)",
        secret: "sanity_webhook_secret_test",
        other_secret: "not-the-secret",
        headers: &[("sanity-webhook-signature", "t=1700000000000,v1=SMeTpLzxV9NrlESni8Rlc1qPpfOpveFlWkhVJwqJwrY")],
        signature_header: "sanity-webhook-signature",
        body: br#"{"_id":"resume","_type":"cv","name":"Espen"}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "webflow",
        source: "HMAC-SHA256 over ts:body, accepted by webflow-api 3.3.4 webhooks.verifySignature (wrapper/WebhooksClient.js)",
        secret: "webflow_webhook_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-webflow-timestamp", "1700000000000"), ("x-webflow-signature", "8bb317f25daa95ce843d4b265531e385046f1ba26d8195f075734cac51b25d52")],
        signature_header: "x-webflow-signature",
        body: br#"{"triggerType":"form_submission","payload":{"name":"Contact","id":"6321ca84df3949bfc6752327"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "retell",
        source: "retell-sdk 5.66.1 sign, accepted by verify (lib/webhook_auth.js)",
        secret: "key_retell_test",
        other_secret: "not-the-secret",
        headers: &[("x-retell-signature", "v=1700000001000,d=7c40973f410aace04ae7b647d283775701f8cde47380ccb57d393470d56beede")],
        signature_header: "x-retell-signature",
        body: br#"{"event":"call_ended","call":{"call_id":"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_001_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "box",
        source: "HMAC-SHA256 over body+timestamp, accepted by box-node-sdk 10.12.0 WebhooksManager.validateMessage (src/managers/webhooks.ts)",
        secret: "box_primary_signature_key",
        other_secret: "not-the-secret",
        headers: &[("box-delivery-timestamp", "2023-11-14T15:13:20-07:00"), ("box-signature-primary", "Sg1VM9lOrATfpW0IJaHl5GQvU2Ld0Jo8r3QW4Oz4OTI=")],
        signature_header: "box-signature-primary",
        body: br#"{"type":"webhook_event","id":"eb0c4e06-751f-442c-86f8-fd5bb404dbec","trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((600, 0)),
    },
    Vector {
        provider: "telnyx",
        source: "Ed25519 over ts|body with a test key (seed 0x0b * 32), accepted by telnyx 7.24.0 TelnyxWebhook.verify (src/lib/webhooks.ts)",
        secret: "Zr5+Myx6RTMyvZ0Kf32wVfXF7xoGraZtmLOftoEMRzo=",
        other_secret: "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        headers: &[("telnyx-timestamp", "1700000000"), ("telnyx-signature-ed25519", "nYBeGTjsna4l/jp6UOTfbOitpG1L2yAiDIkhoaxfpTuLmX8MG5mSASvp1TvXdEPp878eSbJLSEv2leBjWs9rBA==")],
        signature_header: "telnyx-signature-ed25519",
        body: br#"{"data":{"event_type":"call.initiated","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","occurred_at":"2023-11-14T22:13:20.000Z","payload":{},"record_type":"event"},"meta":{"attempt":1}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "finch",
        source: "@tryfinch/finch-api 10.7.0 webhooks.signPayload, accepted by webhooks.verifySignature (resources/webhooks.js)",
        secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("finch-event-id", "evt_finch_1"), ("finch-timestamp", "1700000000"), ("finch-signature", "v1,+wRTMMmEvZ6UfaVASxA+1aV64BED8WPbuYyN2HH0WVc=")],
        signature_header: "finch-signature",
        body: br#"{"account_id":"acc_1","company_id":"co_1","event_type":"job.benefit_create.updated","data":{"job_id":"job_1"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "orb",
        source: "orb-billing 6.11.0 webhooks.signPayload, accepted by webhooks.verifySignature (resources/webhooks.js)",
        secret: "orb_webhook_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-orb-timestamp", "2023-11-14T22:13:20.000000"), ("x-orb-signature", "v1=ac76cf32ec26ad371c3d55617aad0cd3439296791835caae3c0704e091c1bab3")],
        signature_header: "x-orb-signature",
        body: br#"{"id":"evt_orb_1","created_at":"2023-11-14T22:13:20.000000+00:00","type":"subscription.started","properties":{}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "modern-treasury",
        source: "modern-treasury 3.3.0 webhooks.getSignature, accepted by webhooks.validateSignature (resources/webhooks.js)",
        secret: "mt_webhook_key_test",
        other_secret: "not-the-secret",
        headers: &[("x-signature", "a868869c2ce2bfe03c94c9e433ab782d256f05204944bf128ffa97ff80260ef0")],
        signature_header: "x-signature",
        body: br#"{"event":"completed","data":{"id":"pay_1","object":"payment_order"}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "lithic",
        source: "signed with standardwebhooks 1.1.1, accepted by lithic 0.145.0 webhooks.verifySignature (resources/webhooks.js)",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "whsec_dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("webhook-id", "msg_lithic_1"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,gTV/Em9issmFQZAdK5yNEfptEhn38uCtsgMWdZFWqdE=")],
        signature_header: "webhook-signature",
        body: br#"{"event_type":"card.created","token":"tok_1","payload":{"card_token":"card_1"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "whop",
        source: "signed with standardwebhooks 1.1.1, accepted by @whop/sdk 0.0.42 webhooks.unwrap (resources/webhooks.js)",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "whsec_dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("webhook-id", "msg_whop_1"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,4/WgGLQ2XhIAO+oOh/jFTCyDAjd55ao8W8WIFDilQVg=")],
        signature_header: "webhook-signature",
        body: br#"{"id":"evt_whop_1","type":"payment.succeeded","data":{"id":"pay_1"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "dodopayments",
        source: "signed with standardwebhooks 1.1.1, accepted by dodopayments 2.52.0 webhooks.unwrap (resources/webhooks/webhooks.js)",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        other_secret: "whsec_dGhlIG90aGVyIHNlY3JldA==",
        headers: &[("webhook-id", "msg_dodo_1"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,aZ5uS7Msa81BBL/tSsJjGXl/cEvtrmtv5sFCe1zlTVg=")],
        signature_header: "webhook-signature",
        body: br#"{"business_id":"bus_1","type":"payment.succeeded","timestamp":"2023-11-14T22:13:20Z","data":{"payment_id":"pay_1"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "imagekit",
        source: "signed with standardwebhooks 1.1.1 over base64(secret), accepted by @imagekit/nodejs 7.11.0 webhooks.unwrap (resources/webhooks.js)",
        secret: "whsec_imagekit_raw_secret_test",
        other_secret: "whsec_imagekit_other_secret",
        headers: &[("webhook-id", "msg_ik_1"), ("webhook-timestamp", "1700000000"), ("webhook-signature", "v1,OBfwSwkzCV30q0aM59IJmbs6wp5WVipr+UVNghG/hik=")],
        signature_header: "webhook-signature",
        body: br#"{"type":"video.transformation.ready","id":"evt_ik_1","created_at":"2023-11-14T22:13:20.000Z","data":{}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "viber",
        source: "viber-bot 1.0.18 MessageValidator._calculateHmacFromMessage / validateMessage (lib/message/message-validator.js)",
        secret: "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9",
        other_secret: "not-the-secret",
        headers: &[("x-viber-content-signature", "c47b55d0ef630b4b2e2e25fc9da138ceb0463299857551e14e5348ac8ad74db6")],
        signature_header: "x-viber-content-signature",
        body: br#"{"event":"message","timestamp":1700000000000,"message_token":4912661846655238145,"message":{"type":"text","text":"hi"}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "ghost",
        source: "the X-Ghost-Signature expression of TryGhost/Ghost@2cd588c ghost/core/core/server/services/webhooks/WebhookTrigger.js, run in Node 20",
        secret: "ghost_webhook_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-ghost-signature", "sha256=50c4920af36d4de6c9853d00d7fe2cb24cc4edb9e6ba7963cb058eb1bb00d90e, t=1700000000000")],
        signature_header: "x-ghost-signature",
        body: br#"{"event":"post.published","post":{"current":{"id":"5ddc9141c35e7700383b2937"}}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "calcom",
        source: "createWebhookSignature of calcom/cal.com@008952d packages/features/webhooks/lib/sendPayload.ts, run in Node 20",
        secret: "calcom_webhook_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-cal-signature-256", "f2f677292b1891435e6a8fe1c8915c0a7edd6e8bc1c5c18d1d49cfec47c2275d")],
        signature_header: "x-cal-signature-256",
        body: br#"{"triggerEvent":"BOOKING_CREATED","createdAt":"2023-11-14T22:13:20.000Z","payload":{"uid":"bk_1"}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "twenty",
        source: "generateSignature of twentyhq/twenty@2e9be66 packages/twenty-server/src/engine/core-modules/webhook/jobs/call-webhook.job.ts, run in Node 20",
        secret: "twenty_webhook_secret_test",
        other_secret: "not-the-secret",
        headers: &[("x-twenty-webhook-timestamp", "1700000000000"), ("x-twenty-webhook-signature", "6dc394909bc4baa7c54f3de0854452036873230c5828edb2d8813269ad6d1f1a")],
        signature_header: "x-twenty-webhook-signature",
        body: br#"{"targetUrl":"https://h.example/x","eventName":"person.created","workspaceId":"ws_1","webhookId":"wh_1","record":{"id":"p_1"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "zendesk",
        source: "base64(HMACSHA256(TIMESTAMP + BODY)) as https://developer.zendesk.com/documentation/webhooks/verifying/ gives it, with Node 20 crypto",
        secret: "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ",
        other_secret: "not-the-secret",
        headers: &[("x-zendesk-webhook-signature-timestamp", "2023-11-14T22:13:20Z"), ("x-zendesk-webhook-signature", "2l/NWUtuOm4yWlSXr/HWngTLNMbQKJsCwFWjU7p+DVg=")],
        signature_header: "x-zendesk-webhook-signature",
        body: br#"{"type":"zen:event-type:ticket.created","id":"01HEZ1","detail":{"id":"35436"}}"#,
        timestamp: SignedTimestamp::UnixMs(1_700_000_000_000),
        window: Some((300, 300)),
    },
    Vector {
        provider: "lemonsqueezy",
        source: "the verification of Lemon Squeezy's official template lmsqueezy/nextjs-billing@0a73f08 src/app/api/webhook/route.ts (HMAC-SHA256 hex of the raw body), run in Node 20; header per docs.lemonsqueezy.com/help/webhooks/signing-requests",
        secret: "lemon_signing_secret",
        other_secret: "not-the-secret",
        headers: &[("x-signature", "44d0a23d8fc550f0f0ea4b7ef4d96837bdb2b9055532537aaa92a815a913c123")],
        signature_header: "x-signature",
        body: br#"{"meta":{"event_name":"order_created"},"data":{"type":"orders","id":"1"}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "clickup",
        source: "the Node example of https://developer.clickup.com/docs/webhooksignature (HMAC-SHA256 hex of the body); body from that page",
        secret: "clickup_webhook_secret",
        other_secret: "not-the-secret",
        headers: &[("x-signature", "f75c32a1bce02f2a27d7ebc5eb33a34af1e3e430cbf199967148c57460bd2a24")],
        signature_header: "x-signature",
        body: br#"{"webhook_id":"7689a169-a000-4985-8676-6902b96d6627","event":"taskCreated","task_id":"c0j"}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "netbox",
        source: "generate_signature of netbox-community/netbox@28cb2eb netbox/extras/webhooks.py, run in Python 3",
        secret: "netbox_webhook_secret",
        other_secret: "not-the-secret",
        headers: &[("x-hook-signature", "147c31a68c2aa9cd62e8d228a614d7b09fa72ef24808a944ede419f546ae6a99c8dd66b7f44c33bc09c4fa2cb59d13f7f6d8241275e95087c5d70e7453cfb76f")],
        signature_header: "x-hook-signature",
        body: br#"{"event": "created", "timestamp": "2023-11-14 22:13:20.000000+00:00", "model": "site", "username": "admin", "request_id": "e5f2a9d6-1b0c-4c1e-9a3b-2f1d6c9e7a10", "data": {"id": 1, "name": "DC1"}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "frappe",
        source: "get_webhook_headers of frappe/frappe@04d8529 frappe/integrations/doctype/webhook/webhook.py, run in Python 3",
        secret: "frappe_webhook_secret",
        other_secret: "not-the-secret",
        headers: &[("x-frappe-webhook-signature", "RbroYytD5kcntHx9hxCXIDmnhnDLKpCFM9gclrmrvB4=")],
        signature_header: "x-frappe-webhook-signature",
        body: br#"{"name": "SINV-0001", "doctype": "Sales Invoice", "grand_total": 100.0}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "plane",
        source: "the X-Plane-Signature expression of makeplane/plane@0115efa apps/api/plane/bgtasks/webhook_task.py, run in Python 3",
        secret: "plane_webhook_secret",
        other_secret: "not-the-secret",
        headers: &[("x-plane-signature", "ec60ef81f98ce5ca3de8c759605db6b34087aa54b472b07c64910dd619828321")],
        signature_header: "x-plane-signature",
        body: br#"{"event": "issue", "action": "create", "webhook_id": "wh_1", "workspace_id": "ws_1", "data": {"id": "iss_1"}, "activity": null}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "gitea",
        source: "go-gitea/gitea@05a2257 services/webhook/deliver.go signs with Go hmac-sha256 + hex; reproduced with Python 3 hmac",
        secret: "gitea_webhook_secret",
        other_secret: "not-the-secret",
        headers: &[("x-gitea-signature", "c990c4b15df781cdc36b048b37e563a3410aec6ba56d65bfefa5c12d768c5380")],
        signature_header: "x-gitea-signature",
        body: br#"{"ref":"refs/heads/main","before":"0000","after":"abcd","repository":{"full_name":"o/r"}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "gogs",
        source: "gogs/gogs@040a86d internal/database/webhook.go signs with Go hmac-sha256 + hex; reproduced with Python 3 hmac",
        secret: "gogs_webhook_secret",
        other_secret: "not-the-secret",
        headers: &[("x-gogs-signature", "a06de91a6ce83028c249bef5b290781bc2b69469addf6304f544eae8dc6dc154")],
        signature_header: "x-gogs-signature",
        body: br#"{"ref":"refs/heads/master","before":"0000","after":"abcd","repository":{"full_name":"o/r"}}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
    Vector {
        provider: "terraform-cloud",
        source: "the notification-configurations API docs (Notification Authenticity, Ruby OpenSSL::HMAC.hexdigest sha512 sample); reproduced with Python 3 hmac",
        secret: "tfe_notification_token",
        other_secret: "not-the-secret",
        headers: &[("x-tfe-notification-signature", "ae8cc0c5b84fb387b8780fab4ef280f0e2aa5de5c5da6e7e9dfd70a8bf4d7de610f470fcc1048028ed71c09598d9716790c0abc3576298296f9c283a40cf45fa")],
        signature_header: "x-tfe-notification-signature",
        body: br#"{"payload_version":1,"notification_configuration_id":"nc-AeUQ2zfKZzW9TiGZ","run_url":"https://app.terraform.io/app/acme/ws/runs/run-1","run_id":"run-1","notifications":[{"message":"Run Canceled","trigger":"run:errored","run_status":"canceled"}]}"#,
        timestamp: SignedTimestamp::None,
        window: None,
    },
];

/// The header value with one character of its signature changed: the middle of the longest
/// run of base64/hex characters, which is the tag (timestamps and ids are shorter).
fn altered(value: &str) -> String {
    let tag_char = |c: char| c.is_ascii_alphanumeric() || "+/-_".contains(c);
    let (mut best, mut start) = ((0, 0), None);
    for (i, c) in value.char_indices().chain([(value.len(), ' ')]) {
        match (tag_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s > best.1 - best.0 {
                    best = (s, i);
                }
                start = None;
            }
            _ => {}
        }
    }
    let mid = (best.0 + best.1) / 2;
    let mut out = value.to_owned().into_bytes();
    out[mid] = if out[mid] == b'a' { b'b' } else { b'a' };
    String::from_utf8(out).unwrap()
}

#[test]
fn altered_changes_the_tag_not_the_timestamp() {
    assert_eq!(
        altered("t=1700000000,v1=00ff00ff00ff00ff"),
        "t=1700000000,v1=00ff00ffa0ff00ff"
    );
    assert_eq!(altered("v1,abcd+/ef="), "v1,abcda/ef=");
}

#[test]
fn new_presets_accept_their_sdk_vectors_and_nothing_else() {
    for v in VECTORS {
        let p = v.provider;
        let r = route(p, &[v.secret], "");
        assert_eq!(
            assert_valid(verify(&r, v.headers, v.body)),
            v.timestamp,
            "{p}: {}",
            v.source
        );
        assert_eq!(
            verify(&r, v.headers, &tampered(v.body)),
            Verdict::Invalid,
            "{p}: a changed body byte"
        );
        let changed: Vec<(&str, String)> = v
            .headers
            .iter()
            .map(|(k, val)| {
                let val = if *k == v.signature_header {
                    altered(val)
                } else {
                    (*val).to_owned()
                };
                (*k, val)
            })
            .collect();
        let changed: Vec<(&str, &str)> = changed.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            verify(&r, &changed, v.body),
            Verdict::Invalid,
            "{p}: a changed signature character"
        );
        assert_eq!(
            verify(&route(p, &[v.other_secret], ""), v.headers, v.body),
            Verdict::Invalid,
            "{p}: another secret"
        );
        assert_eq!(verify(&r, &[], v.body), Verdict::Missing, "{p}: no headers");
        // Rotation: the signing secret second among two still verifies, as key 1.
        match verify(
            &route(p, &[v.other_secret, v.secret], ""),
            v.headers,
            v.body,
        ) {
            Verdict::Valid { key, .. } => assert_eq!(key, 1, "{p}"),
            other => panic!("{p}: rotation: {other:?}"),
        }
    }
}

/// The window the gateway enforces on the timestamp the signature vouched for: the SDK's
/// tolerance (and five minutes ahead where the SDK accepts any future). A vector's own
/// timestamp is inside it at that time, one second past either edge is not.
#[test]
fn new_presets_window_the_signed_timestamp_as_their_sdks_do() {
    for v in VECTORS {
        let p = v.provider;
        let r = route(p, &[v.secret], "");
        let w = r.window.map(|w| (w.past.as_secs(), w.future.as_secs()));
        assert_eq!(w, v.window, "{p}");
        let (SignedTimestamp::UnixMs(ts), Some((past, future))) = (v.timestamp, v.window) else {
            assert_eq!(
                v.timestamp,
                SignedTimestamp::None,
                "{p}: signs no timestamp"
            );
            continue;
        };
        let inside = |now_ms: i64| {
            let skew = now_ms - ts;
            if skew >= 0 {
                skew <= past as i64 * 1000
            } else {
                -skew <= future as i64 * 1000
            }
        };
        assert!(inside(ts), "{p}");
        assert!(!inside(ts + (past as i64 + 1) * 1000), "{p}: stale");
        assert!(!inside(ts - (future as i64 + 1) * 1000), "{p}: ahead");
    }
}

/// Box signs the same payload in two headers, one per key: either key verifies alone, which
/// is how a Box key is rotated.
#[test]
fn box_primary_and_secondary_keys() {
    let body = br#"{"type":"webhook_event","id":"eb0c4e06-751f-442c-86f8-fd5bb404dbec","trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file"}}"#;
    let ts = ("box-delivery-timestamp", "2023-11-14T15:13:20-07:00");
    // Same vector source as the table: box-node-sdk 10.12.0 validateMessage accepts both.
    let primary = (
        "box-signature-primary",
        "Sg1VM9lOrATfpW0IJaHl5GQvU2Ld0Jo8r3QW4Oz4OTI=",
    );
    let secondary = (
        "box-signature-secondary",
        "YMjMs4wp4/2k3sBc4daujuSiTZmQG8fjtRMbDeE/krk=",
    );
    let r = route(
        "box",
        &["box_primary_signature_key", "box_secondary_signature_key"],
        "",
    );
    for (headers, key) in [([ts, primary], 0), ([ts, secondary], 1)] {
        match verify(&r, &headers, body) {
            Verdict::Valid { key: k, timestamp } => {
                assert_eq!(
                    (k, timestamp),
                    (key, SignedTimestamp::UnixMs(1_700_000_000_000))
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        verify(&r, &[primary], body),
        Verdict::Missing,
        "the timestamp is signed"
    );
}

/// Polar keys the HMAC with the secret's own bytes, where Standard Webhooks base64-decodes
/// a whsec_ secret: the same headers under `standard-webhooks` do not verify.
#[test]
fn polar_keys_with_the_raw_secret() {
    let v = VECTORS.iter().find(|v| v.provider == "polar").unwrap();
    let b64 = {
        use base64::Engine;
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(v.secret)
        )
    };
    assert_valid(verify(
        &route("standard-webhooks", &[&b64], ""),
        v.headers,
        v.body,
    ));
    assert_eq!(
        verify(&route("polar", &[&b64], ""), v.headers, v.body),
        Verdict::Invalid
    );
}

/// Clerk and Resend send svix-* headers only, as their SDKs read them; the white-label
/// webhook-* names are not taken for them.
#[test]
fn clerk_and_resend_read_svix_headers_only() {
    for p in ["clerk", "resend"] {
        let v = VECTORS.iter().find(|v| v.provider == p).unwrap();
        let renamed: Vec<(String, &str)> = v
            .headers
            .iter()
            .map(|(k, val)| (k.replace("svix-", "webhook-"), *val))
            .collect();
        let renamed: Vec<(&str, &str)> = renamed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            verify(&route(p, &[v.secret], ""), &renamed, v.body),
            Verdict::Missing,
            "{p}"
        );
    }
}

/// Telegram sends the setWebhook secret_token back as is: the token authenticates the
/// sender, not the body (core.telegram.org/bots/api#setwebhook).
#[test]
fn telegram_secret_token_header() {
    let r = route("telegram", &["tg_secret-Token_1"], "");
    let body = br#"{"update_id":10000,"message":{"message_id":1,"text":"hi"}}"#;
    let h = [("X-Telegram-Bot-Api-Secret-Token", "tg_secret-Token_1")];
    assert_eq!(assert_valid(verify(&r, &h, body)), SignedTimestamp::None);
    assert_eq!(
        verify(
            &r,
            &[("X-Telegram-Bot-Api-Secret-Token", "tg_secret-Token_2")],
            body
        ),
        Verdict::Invalid
    );
    assert_eq!(
        verify(&route("telegram", &["another-token"], ""), &h, body),
        Verdict::Invalid
    );
    assert_eq!(verify(&r, &[], body), Verdict::Missing);
    assert!(
        r.window.is_none(),
        "nothing is signed, so there is no timestamp"
    );
}

/// docs/PRESETS.md has a row for every preset, so the table users read cannot fall behind.
#[test]
fn presets_doc_lists_every_preset() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PRESETS.md")).unwrap();
    for name in hookwall::verify::presets::NAMES {
        assert!(
            doc.lines().any(|l| l.starts_with(&format!("| `{name}` |"))),
            "docs/PRESETS.md has no row for {name}"
        );
    }
}
