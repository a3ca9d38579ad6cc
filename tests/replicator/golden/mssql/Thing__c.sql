-- Replicator export of Thing__c as of backup run 2, mssql dialect (table Thing__c).
-- NULL is a missing value; '' is an empty string (distinct from NULL).
-- Datetimes are DATETIMEOFFSET(3) in UTC; text is NVARCHAR with N'' literals.
-- Run it into an empty schema: it drops and recreates the table.
SET NOCOUNT ON;
SET XACT_ABORT ON;

DROP TABLE IF EXISTS [Thing__c];
CREATE TABLE [Thing__c] (
  [Id] NVARCHAR(18) NOT NULL PRIMARY KEY,
  [IsDeleted] BIT,
  [Name] NVARCHAR(80),
  [Body__c] NVARCHAR(MAX),
  [Count__c] INTEGER,
  [Big__c] BIGINT,
  [Amount__c] NUMERIC(18, 2),
  [Ratio__c] FLOAT,
  [Day__c] DATE,
  [At__c] DATETIMEOFFSET(3),
  [Clock__c] TIME(3),
  [Flag__c] BIT,
  [An_uncommonly_long_custom_field_name__c] NVARCHAR(40),
  [SystemModstamp] DATETIMEOFFSET(3)
);

BEGIN TRANSACTION;
INSERT INTO [Thing__c] ([Id], [IsDeleted], [Name], [Body__c], [Count__c], [Big__c], [Amount__c], [Ratio__c], [Day__c], [At__c], [Clock__c], [Flag__c], [An_uncommonly_long_custom_field_name__c], [SystemModstamp]) VALUES
(N'a01Dn0000000000AAA', 0, N'it''s a "quote"', NULL, 0, 9007199254740993, 1234567890123456.78, 0.1, '2024-02-29', '2024-03-01T08:00:00.123+00:00', '00:00:00.000', 1, N'', '2024-03-01T08:00:00.123+00:00'),
(N'a01Dn0000000001AAA', 0, N'changed ✓', N'back\slash \'' \\ end\back\slash \'' \\ end\back\slash \'' \\ end\', -1, -5, 2.50, -1.5e-7, '1970-01-01', '1999-12-31T23:59:59.999+00:00', '23:59:59.999', 0, N'long', '2024-03-01T08:05:00.124+00:00'),
(N'a01Dn0000000003AAA', 0, N'emoji 😀👍🏽 ünïcødé 中文', N'emoji 😀👍🏽 ünïcødé 中文emoji 😀👍🏽 ünïcødé 中文emoji 😀👍🏽 ünïcødé 中文', NULL, 0, NULL, NULL, NULL, '2038-01-19T03:14:08.001+00:00', '12:30:00.005', 1, N'long', '2024-03-01T08:00:00.126+00:00'),
(N'a01Dn0000000004AAA', 0, N'', NULL, 0, 9007199254740993, 1234567890123456.78, 0.1, '2024-02-29', '2024-03-01T08:00:00.123+00:00', '00:00:00.000', 0, N'', '2024-03-01T08:00:00.127+00:00'),
(N'a01Dn0000000005AAA', 0, N'-- not a comment; /* nor this */ & &amp; :bind ?', N'-- not a comment; /* nor this */ & &amp; :bind ?-- not a comment; /* nor this */ & &amp; :bind ?-- not a comment; /* nor this */ & &amp; :bind ?', -1, -5, -0.01, -1.5e-7, '1970-01-01', '1999-12-31T23:59:59.999+00:00', '23:59:59.999', NULL, N'long', '2024-03-01T08:00:00.128+00:00'),
(N'a01Dn0000000006AAA', 0, N'N''x'' X''00'' E''\n'' $$dollar$$', N'N''x'' X''00'' E''\n'' $$dollar$$N''x'' X''00'' E''\n'' $$dollar$$N''x'' X''00'' E''\n'' $$dollar$$', 2147483647, NULL, 0.00, 12345.6789, '4000-12-31', NULL, NULL, 1, N'', '2024-03-01T08:00:00.129+00:00'),
(N'a01Dn0000000007AAA', 0, N'trailing space ', N'trailing space trailing space trailing space ', NULL, 0, NULL, NULL, NULL, '2038-01-19T03:14:08.001+00:00', '12:30:00.005', 0, N'long', '2024-03-01T08:00:00.130+00:00'),
(N'a01Dn0000000008AAA', 0, N'%_% LIKE wildcards', NULL, 0, 9007199254740993, 1234567890123456.78, 0.1, '2024-02-29', '2024-03-01T08:00:00.123+00:00', '00:00:00.000', NULL, N'', '2024-03-01T08:00:00.131+00:00'),
(N'a01Dn0000000009AAA', 0, N'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', N'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', -1, -5, -0.01, -1.5e-7, '1970-01-01', '1999-12-31T23:59:59.999+00:00', '23:59:59.999', 1, N'long', '2024-03-01T08:00:00.132+00:00'),
(N'a01Dn0000000010AAA', 0, N'it''s a "quote"', N'it''s a "quote"it''s a "quote"it''s a "quote"', 2147483647, NULL, 0.00, 12345.6789, '4000-12-31', NULL, NULL, 0, N'', '2024-03-01T08:00:00.133+00:00'),
(N'a01Dn0000000011AAA', 0, N'back\slash \'' \\ end\', N'back\slash \'' \\ end\back\slash \'' \\ end\back\slash \'' \\ end\', NULL, 0, NULL, NULL, NULL, '2038-01-19T03:14:08.001+00:00', '12:30:00.005', NULL, N'long', '2024-03-01T08:00:00.134+00:00'),
(N'a01Dn0000000012AAA', 0, CAST(N'' AS NVARCHAR(MAX)) + N'new' + NCHAR(10) + N'line' + NCHAR(13) + N'' + NCHAR(10) + N'and	tab', NULL, 0, 9007199254740993, 1234567890123456.78, 0.1, '2024-02-29', '2024-03-01T08:00:00.123+00:00', '00:00:00.000', 1, N'', '2024-03-01T08:05:00.135+00:00');
COMMIT;
