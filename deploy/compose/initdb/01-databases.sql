-- Each service owns its datastore and none reads another's tables, so each
-- gets its own database. Runs once, when the postgres volume is first created.
CREATE DATABASE identity;
CREATE DATABASE consent;
CREATE DATABASE personalization;
CREATE DATABASE loyalty;
CREATE DATABASE feedback;
CREATE DATABASE gateway;
CREATE DATABASE analytics;
