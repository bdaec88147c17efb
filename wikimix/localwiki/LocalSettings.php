<?php
// LocalSettings of one wiki of a wikimix local family (wikimix/localwiki). Rendered per wiki: the
// {{PLACEHOLDERS}} are filled in by family.py. MW_CONFIG_FILE points MediaWiki (php -S and maintenance
// scripts) at the rendered copy in the wiki's directory.
if ( !defined( 'MEDIAWIKI' ) ) {
	exit;
}
// What install.php wrote (database, caches, secret keys), then wikimix's overrides.
require __DIR__ . '/install/LocalSettings.php';

$wgSitename = {{SITENAME}};
$wgServer = {{SERVER}};
$wgScriptPath = "";
$wgArticlePath = "/index.php?title=$1";
$wgLanguageCode = {{LANG}};
// The wiki's own language code names it in the family's interwiki table: links to it are local.
$wgLocalInterwikis = [ {{LANG}} ];
$wgInterwikiMagic = true;
$wgHideInterlanguageLinks = false;

// One SQLite file per wiki; fsync off: the family is rebuilt from dumps, never the only copy.
$wgDBservers = [ [
	'host' => '',
	'dbname' => $wgDBname,
	'user' => '',
	'password' => '',
	'type' => 'sqlite',
	'dbDirectory' => $wgSQLiteDataDir,
	'load' => 1,
	'flags' => DBO_DEFAULT,
	'variables' => [ 'synchronous' => 'OFF' ],
] ];

// Read-only for visitors: the family serves dumps, nobody edits it over HTTP.
$wgGroupPermissions['*']['edit'] = false;
$wgGroupPermissions['*']['createaccount'] = false;
$wgEnableUploads = false;
$wgUseInstantCommons = false;
$wgPingback = false;
$wgEnableEmail = false;

// Localisation cache in files next to the database; no job runs inside web requests.
$wgCacheDirectory = __DIR__ . '/cache';
$wgMainCacheType = CACHE_NONE;
$wgJobRunRate = 0;
$wgShowExceptionDetails = true;
