-- One database per service, each owned by the service's own role: a service's
-- credentials open its own data only (as CloudNativePG's managed roles do in
-- deploy/k8s/06-postgres.yaml). Run by the postgres image only when its data
-- volume is empty. Passwords for a local machine only, as the rest of
-- docker-compose.yml's.
CREATE ROLE linli_welfare LOGIN PASSWORD 'linli_welfare';
CREATE DATABASE linli_welfare OWNER linli_welfare;
CREATE ROLE linli_notifications LOGIN PASSWORD 'linli_notifications';
CREATE DATABASE linli_notifications OWNER linli_notifications;
CREATE ROLE linli_patrol LOGIN PASSWORD 'linli_patrol';
CREATE DATABASE linli_patrol OWNER linli_patrol;
CREATE ROLE linli_donations LOGIN PASSWORD 'linli_donations';
CREATE DATABASE linli_donations OWNER linli_donations;
CREATE ROLE linli_volunteers LOGIN PASSWORD 'linli_volunteers';
CREATE DATABASE linli_volunteers OWNER linli_volunteers;
CREATE ROLE linli_gateway LOGIN PASSWORD 'linli_gateway';
CREATE DATABASE linli_gateway OWNER linli_gateway;
