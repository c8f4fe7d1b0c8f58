-- One database per service (each service owns its data); run by the postgres
-- image only when its data volume is empty.
CREATE DATABASE linli_welfare;
CREATE DATABASE linli_notifications;
CREATE DATABASE linli_patrol;
CREATE DATABASE linli_donations;
CREATE DATABASE linli_volunteers;
CREATE DATABASE linli_gateway;
