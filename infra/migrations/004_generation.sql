-- Switch-over of `dphp replay`: the generation of the projection. A rebuilt projection
-- replaces this schema under its name and both get a new generation; every batch
-- transaction of the services first reads it (FOR KEY SHARE), so one that still runs against
-- the replaced projection notices, reconnects and continues on the new one.
ALTER TABLE dphp.projection_config ADD COLUMN generation bigint NOT NULL DEFAULT 0;
