-- imgw schema version 2: the portable template.
-- Placeholders, filled per dialect (core/store-sql.c, etc/sql/dialect-*.sql):
--   @ID@ auto-increment BIGINT primary key, @CLOB@ long text,
--   @TABLE@ table options, @SUBKEY@ the key of imgw_subscription.

-- version 1
CREATE TABLE imgw_schema (
	version INTEGER NOT NULL
)@TABLE@;
CREATE TABLE imgw_policy_community (
	community VARCHAR(64) NOT NULL PRIMARY KEY,
	default_allow INTEGER DEFAULT 1 NOT NULL,
	local_access VARCHAR(16) DEFAULT 'everyone' NOT NULL,
	inbound_subscribe INTEGER DEFAULT 1 NOT NULL,
	inbound_initiate INTEGER DEFAULT 1 NOT NULL,
	audit_level VARCHAR(16) DEFAULT 'metadata' NOT NULL,
	audit_im INTEGER DEFAULT 1 NOT NULL,
	audit_subscriptions INTEGER DEFAULT 1 NOT NULL,
	audit_presence INTEGER DEFAULT 0 NOT NULL,
	allow_rich_text INTEGER DEFAULT 1 NOT NULL,
	allow_typing INTEGER DEFAULT 1 NOT NULL,
	max_im_sessions INTEGER,
	max_subscriptions INTEGER
)@TABLE@;
CREATE TABLE imgw_policy_rule (
	id @ID@,
	community VARCHAR(64) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	value VARCHAR(512) NOT NULL,
	created_ms BIGINT NOT NULL
)@TABLE@;
CREATE INDEX imgw_policy_rule_community ON imgw_policy_rule (community);
CREATE TABLE imgw_policy_global (
	name VARCHAR(64) NOT NULL PRIMARY KEY,
	value VARCHAR(256)
)@TABLE@;
CREATE TABLE imgw_audit (
	id @ID@,
	ts_ms BIGINT NOT NULL,
	node VARCHAR(64) NOT NULL,
	trace VARCHAR(64),
	kind VARCHAR(16) NOT NULL,
	from_addr VARCHAR(1024),
	to_addr VARCHAR(1024),
	src_community VARCHAR(64),
	dst_community VARCHAR(64),
	decision VARCHAR(16) NOT NULL,
	rule VARCHAR(256),
	condition_name VARCHAR(64),
	content @CLOB@
)@TABLE@;
CREATE INDEX imgw_audit_ts ON imgw_audit (ts_ms);
CREATE TABLE imgw_subscription (
	community VARCHAR(64) NOT NULL,
	watcher VARCHAR(512) NOT NULL,
	presentity VARCHAR(512) NOT NULL,
	state VARCHAR(16) NOT NULL,
	expires_ms BIGINT,
	data @CLOB@,
	node VARCHAR(64),
	updated_ms BIGINT NOT NULL,
	@SUBKEY@
)@TABLE@;
INSERT INTO imgw_schema (version) VALUES (1);

-- version 2
CREATE TABLE imgw_audit_pos (
	spool VARCHAR(64) NOT NULL PRIMARY KEY,
	node VARCHAR(64) NOT NULL,
	segment BIGINT NOT NULL,
	pos BIGINT NOT NULL,
	updated_ms BIGINT NOT NULL
)@TABLE@;
UPDATE imgw_schema SET version = 2;
